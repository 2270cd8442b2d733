import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { BusEnvelope, Ports } from "@simroot/core";
import { isSimrootError, noticeSettleMs } from "@simroot/core";
import { logger, metricsSink, publishMetrics } from "./telemetry.ts";

/** What invokes a consumer: EventBridge (or a redrive) with one event, or the applier's queue with a batch of them. */
export type ConsumerEvent = BusEnvelope | SQSEvent;

const isQueueBatch = (event: ConsumerEvent): event is SQSEvent => Array.isArray((event as SQSEvent).Records);

/** The event a queue message carries (EventBridge sends the whole event as the body), or undefined for anything else. */
function envelopeOf(record: SQSRecord): BusEnvelope | undefined {
  try {
    const parsed = JSON.parse(record.body) as BusEnvelope;
    return typeof parsed?.detail === "object" && parsed.detail !== null && typeof parsed.detail.id === "string" ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What a batch leaves of the function's time: its messages still unfinished then are answered as failed, so a slow
 * batch returns (and the others are deleted) instead of timing out, which would have every message of it received again.
 * Then the notices are settled (`noticeSettleMs`) and the metrics printed.
 */
export const batchDeadlineMarginMs = noticeSettleMs + 3_000;

/**
 * Wraps a bus consumer: a failure is logged (Powertools, with the invocation's request id, and
 * the event's id, type and tenant), then rethrown so the bus retries (EventBridge's retry
 * policy and DLQ in AWS, the local bus's backoff and dead-letter store); the metrics the
 * invocation recorded are printed whether it failed or not. With `ports`, the feed notices the
 * invocation's commits are still sending are awaited first (at most `noticeSettleMs`).
 *
 * Invoked by the applier's queue (a rule that is `queued`), it applies the batch's events side by side and answers the
 * messages that failed (`batchItemFailures`, the mapping's `ReportBatchItemFailures`, counted as `QueueMessagesFailed`):
 * only those are received again, and after the queue's `maxReceiveCount` they go to the rule's dead-letter queue. Those
 * still unfinished `batchDeadlineMarginMs` before the timeout count as failed. A message that carries no event is
 * logged and deleted (`QueueMessagesUnreadable`).
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
  // A child per failure, not keys appended to the shared logger: locally one process runs many invocations at once.
  const logFailure = (context: Context | undefined, envelope: Partial<BusEnvelope> | undefined, error: unknown, extra = {}) => {
    const log = logger.createChild();
    if (context) log.addContext(context);
    log.error("consumer failed", {
      consumer: name,
      eventId: envelope?.detail?.id,
      type: envelope?.["detail-type"],
      tenantId: envelope?.detail?.tenantId,
      code: isSimrootError(error) ? error.code : "internal.unexpected",
      error: error instanceof Error ? error.message : String(error),
      ...extra,
    });
  };
  const applyBatch = async (event: SQSEvent, context: Context | undefined): Promise<SQSBatchResponse> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const remainingMs = context?.getRemainingTimeInMillis?.();
    const deadline = new Promise<"deadline">((resolve) => {
      if (remainingMs !== undefined) timer = setTimeout(() => resolve("deadline"), Math.max(0, remainingMs - batchDeadlineMarginMs));
    });
    const outcomes = await Promise.all(
      event.Records.map(async (record) => {
        const receiveCount = Number(record.attributes.ApproximateReceiveCount);
        const envelope = envelopeOf(record);
        if (!envelope) {
          // Only the rule puts messages in the queue (its policy): one that is no event is no fact, and no retry makes it one.
          logFailure(context, undefined, new Error("not a bus event: deleted"), { messageId: record.messageId, receiveCount });
          metricsSink.add("QueueMessagesUnreadable", 1);
          return undefined;
        }
        try {
          if ((await Promise.race([apply(envelope), deadline])) === "deadline") {
            throw new Error(`not finished ${batchDeadlineMarginMs} ms before the function's timeout: received again`);
          }
          return undefined;
        } catch (error) {
          logFailure(context, envelope, error, { messageId: record.messageId, receiveCount });
          return { itemIdentifier: record.messageId };
        }
      }),
    );
    clearTimeout(timer);
    const batchItemFailures = outcomes.filter((failure) => failure !== undefined);
    if (batchItemFailures.length > 0) metricsSink.add("QueueMessagesFailed", batchItemFailures.length);
    return { batchItemFailures };
  };
  return middy<ConsumerEvent, SQSBatchResponse | undefined>()
    .use({
      after: async () => {
        await settle();
        publishMetrics();
      },
      onError: async (request) => {
        await settle();
        const batch = isQueueBatch(request.event) ? request.event.Records.map((record) => record.messageId) : undefined;
        logFailure(request.context, batch ? undefined : (request.event as BusEnvelope), request.error, batch ? { messageIds: batch } : {});
        publishMetrics();
      },
    })
    .handler(async (event, context) => {
      if (isQueueBatch(event)) return applyBatch(event, context);
      await apply(event);
      return undefined;
    });
}
