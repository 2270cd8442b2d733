/** Scheduled (every minute in AWS): attempts the webhook deliveries that are due (retries, replays, leases left by a killed attempt). */
import type { Context } from "aws-lambda";
import { deliverDue } from "@simroot/core";
import { lambdaPortsWithSecrets } from "./lib/secrets.ts";

// The run ends 10 s before the function's timeout: every attempt settles (a killed one waits out its lease).
export const handler = async (_event?: unknown, context?: Context) => ({
  attempted: await deliverDue(
    lambdaPortsWithSecrets(),
    context ? { budgetMs: Math.max(1_000, context.getRemainingTimeInMillis() - 10_000) } : {},
  ),
});
