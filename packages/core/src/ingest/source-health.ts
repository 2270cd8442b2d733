/**
 * How each ingestion source is doing, for operators: when it last posted, how many events
 * were accepted and how many items of accepted requests were rejected, and the last rejection.
 * Requests refused whole (bad credentials, no acceptable item) record nothing, here as anywhere.
 * Counting on every request would add a write per webhook, so each instance adds its counts
 * up in memory and flushes them at most every `flushMs` (one UpdateItem with ADD per source
 * and flush): the figures are at most that far behind per instance, and an instance that dies
 * loses at most that window of counts. The buffer holds at most `maxSources` sources.
 */
import { QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { Ports } from "../ports.ts";

const flushMs = 5_000;
const maxSources = 1_000;

export const sourceHealthSchema = z
  .object({
    sourceId: z.string(),
    lastRequestAt: z.string().optional(),
    lastEventAt: z.string().optional().meta({ description: "the last request with at least one accepted event" }),
    accepted: z.number().int(),
    rejected: z.number().int().meta({ description: "items refused within accepted requests" }),
    lastRejection: z.string().optional(),
  })
  .meta({ id: "SourceHealth", description: `counts since the source was created, at most ${flushMs / 1000} s behind per instance` });
export type SourceHealth = z.output<typeof sourceHealthSchema>;

interface Pending {
  tenantId: string;
  accepted: number;
  rejected: number;
  lastRequestAt: string;
  lastEventAt?: string;
  lastRejection?: string;
}

const buffers = new WeakMap<object, { pending: Map<string, Pending>; timer?: ReturnType<typeof setTimeout> }>();
const healthKey = (tenantId: string, sourceId: string) => ({ pk: `T#${tenantId}#source-health`, sk: sourceId });

export interface IngestNote {
  readonly accepted: number;
  readonly rejected: number;
  readonly rejection?: string;
}

/** Counts one ingest request of `sourceId`; written to the store within `flushMs`. */
export function noteIngest(ports: Ports, tenantId: string, sourceId: string, note: IngestNote): void {
  let buffer = buffers.get(ports.db);
  if (!buffer) buffers.set(ports.db, (buffer = { pending: new Map() }));
  const at = ports.now().toISOString();
  let pending = buffer.pending.get(sourceId);
  if (!pending) {
    if (buffer.pending.size >= maxSources) void flushSourceHealth(ports);
    pending = { tenantId, accepted: 0, rejected: 0, lastRequestAt: at };
    buffer.pending.set(sourceId, pending);
  }
  pending.accepted += note.accepted;
  pending.rejected += note.rejected;
  pending.lastRequestAt = at;
  if (note.accepted > 0) pending.lastEventAt = at;
  if (note.rejection) pending.lastRejection = `${at} ${note.rejection}`.slice(0, 500);
  buffer.timer ??= setTimeout(() => void flushSourceHealth(ports), flushMs);
  buffer.timer.unref?.();
}

/** Writes every buffered count now (also called on shutdown and by tests). */
export async function flushSourceHealth(ports: Ports): Promise<void> {
  const buffer = buffers.get(ports.db);
  if (!buffer) return;
  clearTimeout(buffer.timer);
  buffer.timer = undefined;
  const pending = [...buffer.pending];
  buffer.pending.clear();
  await Promise.all(
    pending.map(([sourceId, p]) =>
      ports.db
        .send(
          new UpdateCommand({
            TableName: ports.tables.control,
            Key: healthKey(p.tenantId, sourceId),
            UpdateExpression:
              "ADD accepted :a, rejected :r SET lastRequestAt = :at" +
              (p.lastEventAt ? ", lastEventAt = :ev" : "") +
              (p.lastRejection ? ", lastRejection = :rej" : ""),
            ExpressionAttributeValues: {
              ":a": p.accepted,
              ":r": p.rejected,
              ":at": p.lastRequestAt,
              ...(p.lastEventAt ? { ":ev": p.lastEventAt } : {}),
              ...(p.lastRejection ? { ":rej": p.lastRejection } : {}),
            },
          }),
        )
        .catch(() => undefined),
    ),
  );
}

/** The health of every source of the tenant that has posted at least once. */
export async function listSourceHealth(ports: Ports, tenantId: string): Promise<SourceHealth[]> {
  const { Items = [] } = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.control,
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": healthKey(tenantId, "").pk },
      Limit: 1000,
    }),
  );
  return Items.map((item) => ({
    sourceId: String(item.sk),
    accepted: Number(item.accepted ?? 0),
    rejected: Number(item.rejected ?? 0),
    ...(item.lastRequestAt ? { lastRequestAt: String(item.lastRequestAt) } : {}),
    ...(item.lastEventAt ? { lastEventAt: String(item.lastEventAt) } : {}),
    ...(item.lastRejection ? { lastRejection: String(item.lastRejection) } : {}),
  }));
}
