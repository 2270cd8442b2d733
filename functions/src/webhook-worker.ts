/** Scheduled (every minute in AWS): attempts the webhook deliveries that are due (retries, replays, leases left by a killed attempt). */
import { deliverDue, runtimePorts } from "@simroot/core";

export const handler = async () => ({ attempted: await deliverDue(runtimePorts()) });
