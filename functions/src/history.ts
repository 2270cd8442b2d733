/**
 * The history in AWS: the audit table's stream invokes this, by its own event source mapping (infra/outbox.ts), with
 * the same new audit records the outbox publishes; it writes what each projects: the record listed under its subject,
 * its IP lease edges as lease items (core outbox.ts `projectFromStream`). Apart from the outbox so that a bus refusing
 * events never holds history back. A failed write reports the first record not written and the mapping retries from
 * there (idempotent puts), until the records leave the stream after 24 hours (`reprojectHistory` writes them again).
 *
 * It is also the feed's backstop (core ledger/catch-up.ts): records the feed head still does not cover once they are
 * 2 s old (their committer stopped before sequencing them) are sequenced here, and the move announced on the feed's
 * push channel.
 */
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import {
  catchUpFromStream,
  documentClient,
  dynamoSettings,
  earliestInStream,
  iotDataClient,
  iotDataEndpoint,
  iotFeedNotifier,
  projectFromStream,
  tableNames,
  type OutboxStreamRecord,
  type Ports,
} from "@simroot/core";
import { logger } from "./lib/telemetry.ts";

export type HistoryPorts = Pick<Ports, "db" | "tables" | "feedNotifier">;

let ports: HistoryPorts | undefined;

export const handlerFor =
  (ports: () => HistoryPorts) =>
  async (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
    if (context) logger.addContext(context);
    const records = event.Records as OutboxStreamRecord[];
    const projected = await projectFromStream(records, ports());
    // Within the function's time (60 s), leaving a run started at the end room to finish (SDK calls give up after
    // 3 attempts of at most 4 s): what is still not covered is given again by the stream.
    const budgetMs = context ? Math.max(1_000, context.getRemainingTimeInMillis() - 40_000) : undefined;
    const { result, retryFrom } = await catchUpFromStream(records, ports(), budgetMs ? { budgetMs } : {});
    const { trailing: _trailing, ...outcome } = result;
    if (result.sequenced.length > 0)
      logger.warn("sequenced committed records their committer left behind", { component: "history", ...outcome });
    if (result.uncovered.length > 0)
      logger.error("committed records the feed does not cover yet; the stream gives them again", { component: "history", ...outcome });
    if (projected.failedAt !== undefined) {
      logger.error("writing committed records' history failed; the stream retries from the first record not written", {
        component: "history",
        projected: projected.projected,
        error: String(projected.error),
      });
    }
    // A burst's trailing notice (at most a second away): sent before the function returns and is frozen.
    await result.trailing;
    const first = earliestInStream(records, [projected.failedAt, retryFrom]);
    return { batchItemFailures: first === undefined ? [] : [{ itemIdentifier: first }] };
  };

function environmentPorts(): HistoryPorts {
  const endpoint = iotDataEndpoint();
  return {
    db: documentClient(dynamoSettings()),
    tables: tableNames(),
    ...(endpoint ? { feedNotifier: iotFeedNotifier(iotDataClient(endpoint)) } : {}),
  };
}

export const handler = handlerFor(() => (ports ??= environmentPorts()));
