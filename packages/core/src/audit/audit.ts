import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import {
  auditPartition,
  auditRecordSchema,
  auditSortKey,
  auditSubjectPartition,
  unhashed,
  type AuditRecord,
} from "../ledger/audit-record.ts";
import { chainHash, genesisHash } from "../ledger/chain.ts";
import { headKey } from "../ledger/ledger.ts";
import { decodeCursor, encodeCursor, pageInput, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";
import { verb } from "../verb.ts";

const stored = (item: Record<string, unknown>): AuditRecord => auditRecordSchema.parse(item);

export const listAuditInput = z.object({
  subject: z.string().min(1).optional().meta({ description: "only records about this subject (a device id)" }),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(2048).optional(),
});

/** A tenant's audit records in order: all of them by sequence, or one subject's by time. */
export const listAudit = verb(listAuditInput, async (ports, ctx, input): Promise<Page<AuditRecord>> => {
  const bySubject = input.subject !== undefined;
  const partition = bySubject ? auditSubjectPartition(ctx.tenantId, input.subject!) : auditPartition(ctx.tenantId);
  const partitionField = bySubject ? "gsi1pk" : "pk";
  // `time` is a DynamoDB reserved word: name it through an attribute name.
  const sortField = bySubject ? "gsi1sk" : "#time";
  // A key condition holds one condition per key: both bounds of a subject's range are one BETWEEN (its sort key,
  // `time#seq`, never equals a bare time, so BETWEEN's inclusive end still excludes records at `to`).
  const range =
    bySubject && input.from && input.to
      ? [`${sortField} BETWEEN :from AND :to`]
      : [input.from && `${sortField} >= :from`, input.to && `${sortField} < :to`].filter(Boolean);
  // Records carry UTC times (toISOString): compare bounds given with another offset in the same terms.
  const from = input.from && new Date(input.from).toISOString();
  const to = input.to && new Date(input.to).toISOString();
  const result = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.audit,
      ...(bySubject ? { IndexName: "byDevice" } : {}),
      KeyConditionExpression: [`${partitionField} = :p`, ...(bySubject ? range : [])].join(" AND "),
      ...(!bySubject && range.length > 0 ? { FilterExpression: range.join(" AND "), ExpressionAttributeNames: { "#time": "time" } } : {}),
      ExpressionAttributeValues: {
        ":p": partition,
        ...(from ? { ":from": from } : {}),
        ...(to ? { ":to": to } : {}),
      },
      Limit: input.limit,
      ExclusiveStartKey: decodeCursor(input.cursor, { [partitionField]: partition }),
    }),
  );
  return { items: (result.Items ?? []).map(stored), next: encodeCursor(result.LastEvaluatedKey) };
});

export interface ChainVerification {
  readonly valid: boolean;
  /** How many records this walk checked (from `from`). */
  readonly checked: number;
  /** The sequence the walk started after: 0 for the whole chain, else a signed checkpoint's (see checkpoint.ts). */
  readonly from: number;
  readonly lastSeq: number;
  readonly lastHash: string;
  /** The first record that does not chain, and why. */
  readonly brokenAt?: { readonly seq: number; readonly reason: string };
}

/** Where a walk starts: after record `seq`, whose hash is `hash` (the genesis: 0 and the genesis hash). */
export interface ChainPoint {
  readonly seq: number;
  readonly hash: string;
}

/**
 * Walks a tenant's chain after `start` (the whole chain by default): every record must follow
 * its predecessor and hash to what it says, and the last must be the tenant's head.
 */
export async function verifyAuditChain(
  ports: Ports,
  tenantId: string,
  start: ChainPoint = { seq: 0, hash: genesisHash },
): Promise<ChainVerification> {
  let expectedSeq = start.seq + 1;
  let previous = start.hash;
  let cursor: Record<string, unknown> | undefined;
  const result = (valid: boolean, brokenAt?: ChainVerification["brokenAt"]): ChainVerification => ({
    valid,
    checked: expectedSeq - 1 - start.seq,
    from: start.seq,
    lastSeq: expectedSeq - 1,
    lastHash: previous,
    ...(brokenAt ? { brokenAt } : {}),
  });
  do {
    const page = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.audit,
        KeyConditionExpression: start.seq > 0 ? "pk = :p AND sk > :after" : "pk = :p",
        ExpressionAttributeValues: { ":p": auditPartition(tenantId), ...(start.seq > 0 ? { ":after": auditSortKey(start.seq) } : {}) },
        ExclusiveStartKey: cursor,
        ConsistentRead: true,
      }),
    );
    for (const item of page.Items ?? []) {
      const parsed = auditRecordSchema.safeParse(item);
      const broken = (reason: string) => result(false, { seq: expectedSeq, reason });
      if (!parsed.success) return broken("record is malformed");
      const record = parsed.data;
      if (record.seq !== expectedSeq) return broken(`expected sequence ${expectedSeq}, found ${record.seq}`);
      if (record.prevHash !== previous) return broken("prevHash does not match the previous record");
      if (chainHash(previous, unhashed(record)) !== record.hash) return broken("hash does not match the record's content");
      previous = record.hash;
      expectedSeq += 1;
    }
    cursor = page.LastEvaluatedKey;
  } while (cursor);
  const last = expectedSeq - 1;
  const { Item: head } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: headKey(tenantId), ConsistentRead: true }),
  );
  const headSeq = head ? Number(head.seq) : 0;
  if (headSeq !== last || (head && head.hash !== previous)) {
    return result(false, { seq: last + 1, reason: `the chain head is at ${headSeq}: records are missing or altered at the end` });
  }
  return result(true);
}

export const timelineEntrySchema = z
  .object({
    seq: z.number().int(),
    eventId: z.string(),
    type: z.string(),
    time: z.string(),
    actor: z.string(),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: "TimelineEntry" });
export type TimelineEntry = z.output<typeof timelineEntrySchema>;

/** A device's timeline: its audit records, oldest first (the audit trail already keeps every event per subject). */
export const listTimeline = verb(
  pageInput.extend({ subject: z.string().min(1) }),
  async (ports, ctx, input): Promise<Page<TimelineEntry>> => {
    const page = await listAudit(ports, ctx, { subject: input.subject, limit: input.limit, cursor: input.cursor });
    return {
      items: page.items.map((record) => ({
        seq: record.seq,
        eventId: record.eventId,
        type: record.action,
        time: record.time,
        actor: record.actor,
        data: record.data,
      })),
      next: page.next,
    };
  },
);
