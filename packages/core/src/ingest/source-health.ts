/**
 * How each ingestion source is doing, for operators: when it last posted, how many events
 * were accepted and how many items of accepted requests were rejected, and the last rejection.
 * One UpdateItem (ADD) per accepted request, not per event, written before the 202: exact on
 * every instance, no buffer to lose. Requests refused whole (bad credentials, no acceptable
 * item) record nothing, here as anywhere.
 */
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { partitionPage, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";

export const sourceHealthSchema = z
  .object({
    sourceId: z.string(),
    lastRequestAt: z.string().optional(),
    lastEventAt: z.string().optional().meta({ description: "the last request with at least one accepted event" }),
    accepted: z.number().int(),
    rejected: z.number().int().meta({ description: "items refused within accepted requests" }),
    lastRejection: z.string().optional(),
  })
  .meta({ id: "SourceHealth", description: "counts since the source first posted" });
export type SourceHealth = z.output<typeof sourceHealthSchema>;

/** The item counting a source's requests (deleted with the source). */
export const sourceHealthKey = (tenantId: string, sourceId: string) => ({ pk: `T#${tenantId}#source-health`, sk: sourceId });

export interface IngestNote {
  readonly accepted: number;
  readonly rejected: number;
  readonly rejection?: string;
}

/** Counts one accepted ingest request of `sourceId`. A failure to count never fails the request. */
export async function noteIngest(ports: Ports, tenantId: string, sourceId: string, note: IngestNote): Promise<void> {
  const at = ports.now().toISOString();
  await ports.db
    .send(
      new UpdateCommand({
        TableName: ports.tables.control,
        Key: sourceHealthKey(tenantId, sourceId),
        UpdateExpression:
          "ADD accepted :a, rejected :r SET lastRequestAt = :at" +
          (note.accepted > 0 ? ", lastEventAt = :at" : "") +
          (note.rejection ? ", lastRejection = :rej" : ""),
        // A deleted source's health is a tombstone (ingest/source.ts `deleteSource`): an instance that accepted a
        // request with the source still cached counts nothing into it.
        ConditionExpression: "attribute_not_exists(deletedAt)",
        ExpressionAttributeValues: {
          ":a": note.accepted,
          ":r": note.rejected,
          ":at": at,
          ...(note.rejection ? { ":rej": `${at} ${note.rejection}`.slice(0, 500) } : {}),
        },
      }),
    )
    .catch((error: unknown) => {
      if (error instanceof ConditionalCheckFailedException) return;
      console.error(JSON.stringify({ level: "warn", component: "source-health", sourceId, error: String(error) }));
    });
}

/**
 * A page of the health of the tenant's sources that have posted at least once, in source id order (review 113: one read
 * of 1,000, no cursor, so a tenant's sources past the first 1,000 were never shown).
 */
export async function listSourceHealth(
  ports: Ports,
  tenantId: string,
  page: { readonly limit: number; readonly cursor?: string | undefined },
): Promise<Page<SourceHealth>> {
  return partitionPage(
    ports,
    ports.tables.control,
    sourceHealthKey(tenantId, "").pk,
    page,
    (item) => ({
      sourceId: String(item.sk),
      accepted: Number(item.accepted ?? 0),
      rejected: Number(item.rejected ?? 0),
      ...(item.lastRequestAt ? { lastRequestAt: String(item.lastRequestAt) } : {}),
      ...(item.lastEventAt ? { lastEventAt: String(item.lastEventAt) } : {}),
      ...(item.lastRejection ? { lastRejection: String(item.lastRejection) } : {}),
    }),
    // A deleted source's tombstone is not shown.
    (item) => item.deletedAt === undefined,
  );
}
