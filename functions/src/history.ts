/**
 * The history in AWS: the audit table's stream invokes this, by its own event source mapping (infra/outbox.ts), with
 * the same new audit records the outbox publishes; it writes what each projects: the record listed under its subject,
 * its IP lease edges as lease items (core outbox.ts `projectFromStream`). Apart from the outbox so that a bus refusing
 * events never holds history back. A failed write reports the first record not written and the mapping retries from
 * there (idempotent puts), until the records leave the stream after 24 hours (`reprojectHistory` writes them again).
 */
import type { Context, DynamoDBBatchResponse, DynamoDBStreamEvent } from "aws-lambda";
import { documentClient, dynamoSettings, projectFromStream, tableNames, type OutboxStreamRecord, type Ports } from "@simroot/core";
import { logger } from "./lib/telemetry.ts";

let store: Pick<Ports, "db" | "tables"> | undefined;

export const handlerFor =
  (store: () => Pick<Ports, "db" | "tables">) =>
  async (event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> => {
    if (context) logger.addContext(context);
    const result = await projectFromStream(event.Records as OutboxStreamRecord[], store());
    if (result.failedAt === undefined) return { batchItemFailures: [] };
    logger.error("writing committed records' history failed; the stream retries from the first record not written", {
      component: "history",
      projected: result.projected,
      error: String(result.error),
    });
    return { batchItemFailures: [{ itemIdentifier: result.failedAt }] };
  };

export const handler = handlerFor(() => (store ??= { db: documentClient(dynamoSettings()), tables: tableNames() }));
