import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { BusEnvelope, Ports } from "@simroot/core";
import { isSimrootError, noticeSettleMs } from "@simroot/core";
import { logger, publishMetrics } from "./telemetry.ts";

/** What invokes a consumer: EventBridge (or a redrive) with one event, or the applier's queue with a batch of them. */
export type ConsumerEvent = BusEnvelope | SQSEvent;

const isQueueBatch = (event: ConsumerEvent): event is SQSEvent => Array.isArray((event as SQSEvent).Records);

/** The event a queue message carries: EventBridge sends the whole event as the message body. */
function envelopeOf(record: SQSRecord): BusEnvelope {
  const parsed = JSON.parse(record.body) as BusEnvelope;
  if (typeof parsed?.detail !== "object" || parsed.detail === null) throw new Error(`message ${record.messageId} is not a bus event`);
  return parsed;
}

/**
 * Wraps a bus consumer: a failure is logged (Powertools, with the invocation's request id, and
 * the event's id, type and tenant), then rethrown so the bus retries (EventBridge's retry
 * policy and DLQ in AWS, the local bus's backoff and dead-letter store); the metrics the
 * invocation recorded are printed whether it failed or not. With `ports`, the feed notices the
 * invocation's commits are still sending are awaited first (at most `noticeSettleMs`).
 *
 * Invoked by the applier's queue (a rule that is `queued`), it applies the batch's events side by side and answers the
 * messages that failed (`batchItemFailures`, the mapping's `ReportBatchItemFailures`): only those are received again,
 * and after the queue's `maxReceiveCount` they go to the rule's dead-letter queue.
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
  const applyBatch = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
    const outcomes = await Promise.all(
      event.Records.map(async (record) => {
        let envelope: BusEnvelope | undefined;
        try {
          envelope = envelopeOf(record);
          await apply(envelope);
          return undefined;
        } catch (error) {
          logFailure(context, envelope, error, {
            messageId: record.messageId,
            receiveCount: Number(record.attributes.ApproximateReceiveCount),
          });
          return { itemIdentifier: record.messageId };
        }
      }),
    );
    return { batchItemFailures: outcomes.filter((failure) => failure !== undefined) };
  };
  return middy<ConsumerEvent, SQSBatchResponse | undefined>()
    .use({
      after: async () => {
        await settle();
        publishMetrics();
      },
      onError: async (request) => {
        await settle();
        logFailure(request.context, isQueueBatch(request.event) ? undefined : request.event, request.error);
        publishMetrics();
      },
    })
    .handler(async (event, context) => {
      if (isQueueBatch(event)) return applyBatch(event, context);
      await apply(event);
      return undefined;
    });
}
