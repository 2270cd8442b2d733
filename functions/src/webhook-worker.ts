/** Scheduled (every minute in AWS): attempts the webhook deliveries that are due (retries, replays, leases left by a killed attempt). */
import type { Context } from "aws-lambda";
import { deliverDue, noticeSettleMs, type Ports } from "@simroot/core";
import { lambdaPortsWithSecrets } from "./lib/secrets.ts";
import { logger, publishMetrics } from "./lib/telemetry.ts";

/**
 * The run ends 10 s before the function's timeout: every attempt settles (a killed one waits out its lease). A receiver's
 * 410 disables its subscription through the ledger: like every committing function, the run then waits for its feed
 * notices (at most `noticeSettleMs`) and prints the metrics its commits recorded, the `FeedLatencyMs` that
 * `webhookWorkerFeedLatency` alarms on (review 101: never printed, that alarm had no data).
 */
export const handlerFor =
  (ports: () => Ports) =>
  async (_event?: unknown, context?: Context): Promise<{ attempted: number }> => {
    if (context) logger.addContext(context);
    try {
      return {
        attempted: await deliverDue(ports(), context ? { budgetMs: Math.max(1_000, context.getRemainingTimeInMillis() - 10_000) } : {}),
      };
    } finally {
      await ports()
        .feedNotifier?.settled?.(noticeSettleMs)
        .catch(() => {});
      publishMetrics();
    }
  };

export const handler = handlerFor(lambdaPortsWithSecrets);
