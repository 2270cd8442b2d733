import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { auditPartition, auditRecordSchema, auditSubjectPartition, unhashed, type AuditRecord } from "../ledger/audit-record.ts";
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
  const sortField = bySubject ? "gsi1sk" : "time";
  const range = [input.from && `${sortField} >= :from`, input.to && `${sortField} < :to`].filter(Boolean);
  const result = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.audit,
      ...(bySubject ? { IndexName: "byDevice" } : {}),
      KeyConditionExpression: [`${partitionField} = :p`, ...(bySubject ? range : [])].join(" AND "),
      ...(!bySubject && range.length > 0 ? { FilterExpression: range.join(" AND ") } : {}),
      ExpressionAttributeValues: {
        ":p": partition,
        ...(input.from ? { ":from": input.from } : {}),
        ...(input.to ? { ":to": input.to } : {}),
      },
      Limit: input.limit,
      ExclusiveStartKey: decodeCursor(input.cursor, { [partitionField]: partition }),
    }),
  );
  return { items: (result.Items ?? []).map(stored), next: encodeCursor(result.LastEvaluatedKey) };
});

export interface ChainVerification {
  readonly valid: boolean;
  readonly checked: number;
  readonly lastSeq: number;
  readonly lastHash: string;
  /** The first record that does not chain, and why. */
  readonly brokenAt?: { readonly seq: number; readonly reason: string };
}

/** Walks a tenant's whole chain: every record must follow its predecessor and hash to what it says. */
export async function verifyAuditChain(ports: Ports, tenantId: string): Promise<ChainVerification> {
  let expectedSeq = 1;
  let previous = genesisHash;
  let cursor: Record<string, unknown> | undefined;
  do {
    const page = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.audit,
        KeyConditionExpression: "pk = :p",
        ExpressionAttributeValues: { ":p": auditPartition(tenantId) },
        ExclusiveStartKey: cursor,
        ConsistentRead: true,
      }),
    );
    for (const item of page.Items ?? []) {
      const parsed = auditRecordSchema.safeParse(item);
      const broken = (reason: string) => ({ valid: false, checked: expectedSeq - 1, lastSeq: expectedSeq - 1, lastHash: previous, brokenAt: { seq: expectedSeq, reason } });
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
  const checked = expectedSeq - 1;
  const { Item: head } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: headKey(tenantId), ConsistentRead: true }),
  );
  const headSeq = head ? Number(head.seq) : 0;
  if (headSeq !== checked || (head && head.hash !== previous)) {
    return { valid: false, checked, lastSeq: checked, lastHash: previous, brokenAt: { seq: checked + 1, reason: `the chain head is at ${headSeq}: records are missing or altered at the end` } };
  }
  return { valid: true, checked, lastSeq: checked, lastHash: previous };
}

export const timelineEntrySchema = z
  .object({ seq: z.number().int(), eventId: z.string(), type: z.string(), time: z.string(), actor: z.string(), data: z.record(z.string(), z.unknown()) })
  .meta({ id: "TimelineEntry" });
export type TimelineEntry = z.output<typeof timelineEntrySchema>;

/** A device's timeline: its audit records, oldest first (the audit trail already keeps every event per subject). */
export const listTimeline = verb(
  pageInput.extend({ subject: z.string().min(1) }),
  async (ports, ctx, input): Promise<Page<TimelineEntry>> => {
    const page = await listAudit(ports, ctx, { subject: input.subject, limit: input.limit, cursor: input.cursor });
    return {
      items: page.items.map((record) => ({ seq: record.seq, eventId: record.eventId, type: record.action, time: record.time, actor: record.actor, data: record.data })),
      next: page.next,
    };
  },
);
