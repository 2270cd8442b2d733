/**
 * The outbox (core `outbox/outbox.ts`): the audit table's stream invokes `functions/src/outbox.ts`
 * with every new audit record, in order per stream shard, and it publishes their events to the
 * bus. A failed publish reports the first unpublished record and the mapping retries from it
 * (no retry limit: a record is retried until it is published, or leaves the stream after 24
 * hours, which the iterator age alarm in ops.ts reports long before, and the discard queue below records). The history
 * function reads the same records by its own mapping.
 */
import { dynamoTables } from "./database";
import { functionArgs } from "./functions";
import { deadLetterQueue, streamReaders } from "../packages/core/src/platform/limits";

/**
 * Where either mapping says what it dropped: a batch whose records left the stream (24 hours) before its function took
 * them (the function failing, or not running, for that long). The message names the stream shard, the batch's first and
 * last sequence numbers and when the stream got them, not the records: README "Events" says how to repair from it (the
 * records stay in the audit table). `StreamDiscards` in ops.ts alarms on any message.
 */
export const streamDiscards = new sst.aws.Queue("StreamDiscardsQueue", {
  transform: { queue: { messageRetentionSeconds: deadLetterQueue.retentionSeconds } },
});
/** What the mappings' on-failure records need of the reader's role: Lambda sends them with the function's role. */
const sendsDiscards = [{ actions: ["sqs:SendMessage"], resources: [streamDiscards.arn] }];

/** Only new audit records: feed version records and subject listing items (no `action`) and modifications are not. */
const newRecords = [{ eventName: ["INSERT"], dynamodb: { NewImage: { action: { S: [{ exists: true }] } } } }];

/**
 * Every record, in order per shard, from the oldest; retried with no limit from the first one the function reports;
 * gathered for `windowSeconds` up to `batchSize` records (core platform `streamReaders`: what each reader can wait, what
 * that saves, and how many records it must take at once to keep up).
 */
const transform = (batchSize: number, windowSeconds: number) => ({
  eventSourceMapping: (args: aws.lambda.EventSourceMappingArgs): undefined => {
    // From the oldest record: what was committed before the mapping existed is handled too.
    args.startingPosition = "TRIM_HORIZON";
    args.maximumRetryAttempts = -1;
    args.bisectBatchOnFunctionError = false;
    args.functionResponseTypes = ["ReportBatchItemFailures"];
    args.batchSize = batchSize;
    args.maximumBatchingWindowInSeconds = windowSeconds;
    args.destinationConfig = { onFailure: { destinationArn: streamDiscards.arn } };
    return undefined;
  },
});

export const outbox = dynamoTables.audit.subscribe("Outbox", functionArgs("outbox", {}, sendsDiscards), {
  filters: newRecords,
  transform: transform(streamReaders.outboxBatchSize, streamReaders.outboxWindowSeconds),
});

/**
 * The history (`functions/src/history.ts`): the same records by a second mapping of the same stream (DynamoDB streams
 * serve two readers a shard), with the same retries, so that a failing publish holds back no history.
 */
export const history = dynamoTables.audit.subscribe("History", functionArgs("history", {}, sendsDiscards), {
  filters: newRecords,
  transform: transform(streamReaders.historyBatchSize, streamReaders.historyWindowSeconds),
});
