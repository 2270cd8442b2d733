/** Scheduled (every minute in AWS): attempts the webhook deliveries that are due (retries, replays, leases left by a killed attempt). */
import { deliverDue } from "@simroot/core";
import { lambdaPortsWithSecrets } from "./lib/secrets.ts";

export const handler = async () => ({ attempted: await deliverDue(lambdaPortsWithSecrets()) });
