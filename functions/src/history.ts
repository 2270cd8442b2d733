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
  createLedger,
  documentClient,
  dynamoSettings,
  iotDataEndpoint,
  iotDataClient,
  iotFeedNotifier,
  projectFromStream,
  publishCommits,
  tableNames,
  type OutboxStreamRecord,
  type Ports,
} from "@simroot/core";
import { logger } from "./lib/telemetry.ts";

export type HistoryPorts = Pick<Ports, "db" | "tables" | "ledger">;

let ports: HistoryPorts | undefined;

export const handlerFor =
  (ports: () => HistoryPorts) =>
  async (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
    if (context) logger.addContext(context);
    const records = event.Records as OutboxStreamRecord[];
    const result = await projectFromStream(records, ports());
    const sequenced = await catchUpFromStream(records, ports());
    if (sequenced.length > 0) logger.warn("sequenced committed records their committer left behind", { component: "history", sequenced });
    if (result.failedAt === undefined) return { batchItemFailures: [] };
    logger.error("writing committed records' history failed; the stream retries from the first record not written", {
      component: "history",
      projected: result.projected,
      error: String(result.error),
    });
    return { batchItemFailures: [{ itemIdentifier: result.failedAt }] };
  };

function environmentPorts(): HistoryPorts {
  const db = documentClient(dynamoSettings());
  const tables = tableNames();
  const endpoint = iotDataEndpoint();
  const built = {
    db,
    tables,
    ledger: createLedger(db, tables),
    ...(endpoint ? { feedNotifier: iotFeedNotifier(iotDataClient(endpoint)) } : {}),
  };
  publishCommits(built);
  return built;
}

export const handler = handlerFor(() => (ports ??= environmentPorts()));
