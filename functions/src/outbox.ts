/**
 * The outbox in AWS: the audit table's stream (its event source mapping, infra/outbox.ts)
 * invokes this with new audit records; their events go to the bus. A batch whose publish
 * fails reports the first record not published, and the mapping retries from there (in order,
 * until the records leave the stream after 24 hours; the iterator age alarm says long before).
 * An event EventBridge refuses for good is a dead letter instead (core outbox/outbox.ts), logged
 * and counted here (`EventsRefused`, which `OutboxEventsRefused` alarms on) once, as its letter is first written, and the
 * batch goes on; so is an event it has not taken 12 hours after the stream got its record (`held`, redrivable), before the
 * stream drops it with the rest of its shard at 24 hours (review 103).
 */
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import {
  busName,
  documentClient,
  dynamoSettings,
  eventBridgePublisher,
  publishFromStream,
  tableNames,
  type OutboxStreamRecord,
  type Ports,
  type Publisher,
} from "@simroot/core";
import { logger, metricsSink, publishMetrics } from "./lib/telemetry.ts";

let built: Publisher | undefined;
/** What writing a step's held letters may take (100 conditional puts at once), kept free of the publish's tries. */
const holdLettersMs = 3_000;
let store: Pick<Ports, "db" | "tables"> | undefined;

/** `store`: where the tenants' interests are read (which opt-in consumers each event is for: core outbox/interests.ts). */
export const handlerFor =
  (publisher: () => Publisher, store: () => Pick<Ports, "db" | "tables">) =>
  async (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
    if (context) logger.addContext(context);
    let unreadable = 0;
    const result = await publishFromStream(publisher(), event.Records as OutboxStreamRecord[], store(), {
      // Each record that does not parse, counted once per batch given: a batch given again counts it again, which an
      // alarm on any count tolerates (review 103: they were only logged).
      onUnreadable: () => {
        unreadable += 1;
      },
      // Room left to write held letters before the function's timeout.
      ...(context ? { deadline: Date.now() + context.getRemainingTimeInMillis() - holdLettersMs } : {}),
      // Logged and counted as each step writes its letters: a run that dies in a later step has counted them, and the
      // batch given again (at least once) finds them written and counts nothing (review 74).
      onRefused: (refused) => {
        for (const { record, reason, again, held } of refused) {
          const fields = {
            component: "outbox",
            tenantId: record.tenantId,
            eventId: record.eventId,
            eventType: record.action,
            shard: record.shard,
            seq: record.seq,
            reason,
          };
          if (held && !again)
            logger.error(
              "the bus has not taken a committed event for 12 hours: held as a dead letter of its tenant before the stream drops it (redrive it once the bus takes events)",
              fields,
            );
          else if (again)
            logger.warn(
              `${held ? "a committed event held" : "the bus refused a committed event for good"} again: its dead letter was written before (the batch given again)`,
              fields,
            );
          else
            logger.error("the bus refused a committed event for good: a dead letter of its tenant now (simroot bus dead-letters)", fields);
        }
        const first = refused.filter(({ again }) => !again).length;
        if (first === 0) return;
        metricsSink.add("EventsRefused", first);
        publishMetrics();
      },
    });
    if (unreadable > 0) {
      metricsSink.add("RecordsUnreadable", unreadable);
      publishMetrics();
    }
    if (result.failedAt === undefined) return { batchItemFailures: [] };
    logger.error("publishing committed events failed; the stream retries from the first unpublished record", {
      component: "outbox",
      published: result.published,
      error: String(result.error),
    });
    return { batchItemFailures: [{ itemIdentifier: result.failedAt }] };
  };

export const handler = handlerFor(
  () => (built ??= eventBridgePublisher(busName())),
  () => (store ??= { db: documentClient(dynamoSettings()), tables: tableNames() }),
);
