import * as z from "zod";
import type { TableNames } from "../config.ts";
import type { DomainEvent } from "../event/event.ts";
import type { TransactItem } from "../store/transaction.ts";
import type { FeedChange, LeaseEdge } from "./change.ts";
import { deflatedJson, openDeflated } from "../store/deflated.ts";
import { chainHash } from "./chain.ts";
import { shardPartition } from "./shard.ts";

export const auditRecordSchema = z
  .object({
    seq: z.number().int().positive().meta({ description: "position in its shard's chain, from 1" }),
    shard: z
      .number()
      .int()
      .min(0)
      .meta({ description: "the ledger shard whose chain holds the record (a device's by its id, tenant-level on 0)" }),
    tenantId: z.string(),
    time: z.string(),
    action: z.string().meta({ description: "the event type, e.g. device.registered" }),
    actor: z.string().meta({ description: "key:<id>, source:<id> or system:<component>" }),
    requestId: z.string(),
    subject: z.string(),
    eventId: z.string(),
    data: z.record(z.string(), z.unknown()),
    feed: z
      .array(
        z.object({
          kind: z.string(),
          key: z.string(),
          value: z.record(z.string(), z.unknown()).nullable(),
          rev: z.number().int().positive().optional().meta({ description: "an IP binding's revision this change wrote" }),
          labelsBefore: z
            .record(z.string(), z.string())
            .optional()
            .meta({ description: "a device's labels before this change, on a change that moved them" }),
        }),
      )
      .optional()
      .meta({ description: "what enforcement points must learn from this change; the feed sequencer gives it a feed version" }),
    leases: z
      .array(
        z.object({
          address: z.string(),
          at: z.string(),
          edge: z.enum(["start", "end"]),
          bearer: z.string(),
        }),
      )
      .optional()
      .meta({ description: "the IP lease edges of the subject's device this change implies (who held which address when)" }),
    prevHash: z.string().meta({ description: "hash of the previous record (64 zeros for the first)" }),
    hash: z.string().meta({ description: "SHA-256 of prevHash and this record's canonical JSON without hash" }),
  })
  .meta({ id: "AuditRecord" });
export type AuditRecord = z.output<typeof auditRecordSchema>;

/** When a record of `time` leaves DynamoDB (epoch seconds, for its TTL). */
export const expiry = (time: string, retentionSeconds: number) => Math.floor(Date.parse(time) / 1000) + retentionSeconds;

/** The partition of one shard's chain of audit records. */
export const auditPartition = (tenantId: string, shard = 0) => shardPartition(tenantId, shard);
export const auditSubjectPartition = (tenantId: string, subject: string) => `T#${tenantId}#S#${subject}`;
export const auditSortKey = (seq: number) => String(seq).padStart(12, "0");
/**
 * Where a record is listed among its subject's, in time order: the time (UTC, `toISOString`: every one the same
 * length), its sequence and its shard (a subject's records are on one shard, but a tenant-level change about a device
 * is on shard 0). Records written before 2026-12-03 are listed by the `byDevice` index under `time#seq`.
 */
export const subjectSortKey = (time: string, seq: number, shard: number) =>
  `${time}#${auditSortKey(seq)}#${String(shard).padStart(2, "0")}`;

/**
 * The item that lists a record under its subject: the record's key, in the audit table under the subject's partition,
 * gone with the record (the same TTL). Written by the history reader from the committed record (`outbox.ts`), not in the
 * commit's transaction: a small put there costs 1 write unit, where the `byDevice` index's copy of every record cost 2
 * inside the transaction. Like the index it replaces, it is eventually consistent with the record.
 */
export function subjectItem(tables: TableNames, record: AuditRecord, expiresAt: unknown) {
  return {
    TableName: tables.audit,
    Item: {
      pk: auditSubjectPartition(record.tenantId, record.subject),
      sk: subjectSortKey(record.time, record.seq, record.shard),
      record: { pk: auditPartition(record.tenantId, record.shard), sk: auditSortKey(record.seq) },
      ...(typeof expiresAt === "number" ? { expiresAt } : {}),
    },
  };
}

/** The domain event an audit record holds: the very event the change committed. */
export const eventOfRecord = (record: AuditRecord): DomainEvent => ({
  id: record.eventId,
  type: record.action,
  tenantId: record.tenantId,
  subject: record.subject,
  time: record.time,
  actor: record.actor,
  requestId: record.requestId,
  data: record.data,
});

/** A record's body (its data, feed changes and lease edges) inflates to at most this: an item holds at most 400 KB. */
const maxBodyBytes = 4 * 1024 * 1024;

/**
 * A record item as readers parse it (`auditRecordSchema`). Since 2026-12-05 a record stores its data, feed changes and
 * lease edges deflated in one binary attribute, `body` (`auditItem`): as DynamoDB sizes them (every map key and list
 * element counted, the device id and the address repeated in each), they made an attach's record, with ids as long as
 * real ones, an APN and the network, 1,149 bytes, past the 1 KB over which its write costs 4 units in the commit's
 * transaction, not 2; deflated, 879 (`test/record-size.test.ts`). The hash covers the record as before, not its
 * storage. Records written before carry the three as they are. A DynamoDB stream delivered to Lambda carries a binary
 * attribute as base64 text, which is opened too. A body that does not open, or an item with a body and any of the three
 * beside it, is malformed: the schema refuses it.
 */
export function recordOfItem(item: Record<string, unknown>): Record<string, unknown> {
  const { body, ...fields } = item;
  if (body === undefined) return item;
  const bytes = typeof body === "string" ? Buffer.from(body, "base64") : body instanceof Uint8Array ? body : undefined;
  const opened = bytes ? openDeflated(bytes, maxBodyBytes) : undefined;
  const beside = "data" in fields || "feed" in fields || "leases" in fields;
  if (beside || typeof opened !== "object" || opened === null || Array.isArray(opened)) return { ...fields, data: undefined };
  const { data, feed, leases } = opened as Record<string, unknown>;
  return { ...fields, data, ...(feed === undefined ? {} : { feed }), ...(leases === undefined ? {} : { leases }) };
}

/** The fields of a record that its hash covers (everything but the hash). */
export const unhashed = ({ hash: _hash, ...record }: AuditRecord) => record;
/** Whether a record is as committed: its hash recomputes from its previous hash and its content. */
export const hashHolds = (record: AuditRecord) => chainHash(record.prevHash, unhashed(record)) === record.hash;

/**
 * The audit record of an event at position `seq` of shard `shard`, chained to `prevHash`, as a
 * transaction item. The change feed lives in the same records (`feed`): what enforcement
 * points learn is covered by the same hash chain as the audit trail, and the feed sequencer's
 * version records chain over the shard heads.
 */
export function auditItem(
  tables: TableNames,
  event: DomainEvent,
  shard: number,
  seq: number,
  prevHash: string,
  feed?: readonly FeedChange[],
  retentionSeconds?: number,
  leases?: readonly LeaseEdge[],
) {
  const unsigned = {
    seq,
    shard,
    tenantId: event.tenantId,
    time: event.time,
    action: event.type,
    actor: event.actor,
    requestId: event.requestId,
    subject: event.subject,
    eventId: event.id,
    data: event.data as Record<string, unknown>,
    ...(feed && feed.length > 0 ? { feed: [...feed] } : {}),
    ...(leases && leases.length > 0 ? { leases: leases.map(({ address, at, edge, bearer }) => ({ address, at, edge, bearer })) } : {}),
    prevHash,
  };
  const hash = chainHash(prevHash, unsigned);
  const { data, feed: changes, leases: edges, ...fields } = unsigned;
  const put: TransactItem = {
    Put: {
      TableName: tables.audit,
      Item: {
        pk: auditPartition(event.tenantId, shard),
        sk: auditSortKey(seq),
        // Listed under its subject by the history reader (`subjectItem`), not by an index copy written in the transaction.
        ...fields,
        body: deflatedJson({ data, ...(changes ? { feed: changes } : {}), ...(edges ? { leases: edges } : {}) }),
        hash,
        // DynamoDB's TTL: not part of the record (not hashed); the archiver copies the record out well before (audit/archive.ts).
        ...(retentionSeconds ? { expiresAt: expiry(event.time, retentionSeconds) } : {}),
      },
      ConditionExpression: "attribute_not_exists(pk)",
    },
  };
  return { put, hash };
}
