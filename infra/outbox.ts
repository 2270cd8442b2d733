/**
 * The outbox (core `outbox/outbox.ts`): the audit table's stream invokes `functions/src/outbox.ts`
 * with every new audit record, in order per stream shard, and it publishes their events to the
 * bus. A failed publish reports the first unpublished record and the mapping retries from it
 * (no retry limit: a record is retried until it is published, or leaves the stream after 24
 * hours, which the iterator age alarm in ops.ts reports long before).
 */
import { dynamoTables } from "./database";
import { functionArgs } from "./functions";

export const outbox = dynamoTables.audit.subscribe("Outbox", functionArgs("outbox"), {
  // Only new audit records are events: feed version records (no `action`) and modifications are not.
  filters: [{ eventName: ["INSERT"], dynamodb: { NewImage: { action: { S: [{ exists: true }] } } } }],
  transform: {
    eventSourceMapping: (args) => {
      // From the oldest record: what was committed before the mapping existed is published too.
      args.startingPosition = "TRIM_HORIZON";
      args.maximumRetryAttempts = -1;
      args.bisectBatchOnFunctionError = false;
      args.functionResponseTypes = ["ReportBatchItemFailures"];
      args.batchSize = 100;
      args.maximumBatchingWindowInSeconds = 0;
    },
  },
});
