/**
 * A subject's audit records in time order (`GET /v1/audit?subject=`, and an incident's evidence): apart from the rest of
 * the audit API so that the functions that list a device's records carry nothing else of it.
 */
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { auditRecordSchema, auditSubjectPartition, recordOfItem, type AuditRecord } from "../ledger/audit-record.ts";
import { shardCount } from "../ledger/shard.ts";
import { decodeCursor, encodeCursor, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";
import { batchGetAll, itemKeyText } from "../store/batch-get.ts";

const stored = (item: Record<string, unknown>): AuditRecord => auditRecordSchema.parse(recordOfItem(item));

/**
 * One page of a subject's records in time order. Records are listed under their subject by items the history reader writes
 * (`subjectItem`); those written before 2026-12-03 by the `byDevice` index. Both are read and merged, and a page ends
 * where the first of the two reads stopped, so a read cut short skips nothing. The cursor is the last position listed.
 */
export async function subjectPage(
  ports: Ports,
  tenantId: string,
  subject: string,
  limit: number,
  cursor: string | undefined,
  from: string | undefined,
  to: string | undefined,
): Promise<Page<AuditRecord>> {
  const partition = auditSubjectPartition(tenantId, subject);
  const named = cursor === undefined ? undefined : decodeCursor(cursor, { subject: partition })?.after;
  if (named !== undefined && typeof named !== "string") decodeCursor(cursor, { subject: "" }); // throws: not a cursor of this listing
  const after = named as string | undefined;
  // Positions are `time#seq[#shard]` (every character from '#' up): `${after} ` is past `after` and before any later position.
  const latest = (...bounds: (string | undefined)[]) =>
    bounds
      .filter((bound): bound is string => bound !== undefined)
      .sort()
      .at(-1);
  const tableLower = latest(from, after === undefined ? undefined : `${after} `);
  // The index's keys (records written before) are `time#seq`, made positions with the shard of the record's key. It is
  // read from the cursor's `time#seq` on, inclusive: a record of the same time and sequence on another shard may follow
  // the cursor; those at or before it are left out below.
  const indexLower = latest(from, after?.split("#").slice(0, 2).join("#"));
  // A BETWEEN whose bounds are reversed is refused by DynamoDB: past `to`, there is nothing more.
  if (tableLower !== undefined && to !== undefined && tableLower >= to) return { items: [], next: undefined };
  // A key condition holds one condition per key: both bounds are one BETWEEN (a position never equals a bare time, so
  // BETWEEN's inclusive end still leaves out records at `to`).
  const query = (key: string, lower: string | undefined, index?: string) =>
    ports.db.send(
      new QueryCommand({
        TableName: ports.tables.audit,
        ...(index ? { IndexName: index } : {}),
        KeyConditionExpression: [
          `${index ? "gsi1pk" : "pk"} = :p`,
          ...(lower !== undefined && to !== undefined
            ? [`${key} BETWEEN :lower AND :to`]
            : lower !== undefined
              ? [`${key} >= :lower`]
              : to !== undefined
                ? [`${key} < :to`]
                : []),
        ].join(" AND "),
        ExpressionAttributeValues: {
          ":p": partition,
          ...(lower !== undefined ? { ":lower": lower } : {}),
          ...(to !== undefined ? { ":to": to } : {}),
        },
        // The index's read starts at the cursor's position, and up to one record a shard may share it: read past them.
        Limit: index ? limit + shardCount : limit,
      }),
    );
  const [listed, indexed] = await Promise.all([query("sk", tableLower), query("gsi1sk", indexLower, "byDevice")]);
  const indexPosition = (item: Record<string, unknown>) => `${String(item.gsi1sk)}#${String(item.pk).slice(-2)}`;
  const entries = [
    ...(listed.Items ?? []).map((item) => ({ position: String(item.sk), key: item.record as Record<string, unknown> })),
    ...(indexed.Items ?? []).map((item) => ({ position: indexPosition(item), key: { pk: item.pk, sk: item.sk } })),
  ]
    .filter((entry) => after === undefined || entry.position > after)
    .sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
  // Where each read that did not reach the end stopped: past the first of them, the other read may have skipped items.
  const stops = [listed, indexed]
    .filter((result) => result.LastEvaluatedKey)
    .map((result) => {
      const last = result.Items?.at(-1) ?? {};
      return result === listed ? String(last.sk) : indexPosition(last);
    });
  const stop = stops.sort()[0];
  const page = entries.filter((entry) => stop === undefined || entry.position <= stop).slice(0, limit);
  const more = stop !== undefined || page.length < entries.length;
  // The records are read from the table, in the listing's order (one that expired between the two reads is left out).
  const records = new Map(
    (
      await batchGetAll(
        ports,
        ports.tables.audit,
        page.map((entry) => entry.key),
      )
    ).map((item) => [itemKeyText(item), item]),
  );
  const items = page.flatMap((entry) => {
    const item = records.get(itemKeyText(entry.key));
    return item ? [stored(item)] : [];
  });
  return { items, next: more && page.length > 0 ? encodeCursor({ subject: partition, after: page.at(-1)!.position }) : undefined };
}
