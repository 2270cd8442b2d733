import middy from "@middy/core";
import type { BusEnvelope, Ports } from "@simroot/core";
import { isSimrootError, noticeSettleMs } from "@simroot/core";
import { logger, publishMetrics } from "./telemetry.ts";

/**
 * Wraps a bus consumer: a failure is logged (Powertools, with the invocation's request id, and
 * the event's id, type and tenant), then rethrown so the bus retries (EventBridge's retry
 * policy and DLQ in AWS, the local bus's backoff and dead-letter store); the metrics the
 * invocation recorded are printed whether it failed or not. With `ports`, the feed notices the
 * invocation's commits are still sending are awaited first (at most `noticeSettleMs`).
 */
export function consumer(name: string, apply: (envelope: BusEnvelope) => Promise<void>, ports?: () => Ports) {
  // The feed notices its commits sent in the background: sent before the function returns, not frozen with it.
  const settle = async () => {
    try {
      await ports?.().feedNotifier?.settled?.(noticeSettleMs);
    } catch {
      // Never in place of the invocation's outcome: a notice that could not be sent is the PEPs' idle poll's to find.
    }
  };
  return middy<BusEnvelope, void>()
    .use({
      after: async () => {
        await settle();
        publishMetrics();
      },
      onError: async (request) => {
        await settle();
        const error = request.error;
        // A child per failure, not keys appended to the shared logger: locally one process runs many invocations at once.
        const log = logger.createChild();
        log.addContext(request.context);
        log.error("consumer failed", {
          consumer: name,
          eventId: request.event.detail?.id,
          type: request.event["detail-type"],
          tenantId: request.event.detail?.tenantId,
          code: isSimrootError(error) ? error.code : "internal.unexpected",
          error: error?.message,
        });
        publishMetrics();
      },
    })
    .handler(apply);
}
