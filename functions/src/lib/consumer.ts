import middy from "@middy/core";
import type { BusEnvelope } from "@simroot/core";
import { isSimrootError } from "@simroot/core";

/**
 * Wraps a bus consumer: structured log of every failure, then rethrow so the bus retries
 * (EventBridge's retry policy and DLQ in AWS, the local bus's backoff and dead-letter store).
 */
export function consumer(name: string, apply: (envelope: BusEnvelope) => Promise<void>) {
  return middy<BusEnvelope, void>()
    .use({
      onError: async (request) => {
        const error = request.error;
        console.error(
          JSON.stringify({
            level: "error",
            consumer: name,
            eventId: request.event.detail?.id,
            type: request.event["detail-type"],
            code: isSimrootError(error) ? error.code : "internal.unexpected",
            message: error?.message,
          }),
        );
      },
    })
    .handler(apply);
}
