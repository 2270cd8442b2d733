/**
 * History written again from the records (outbox.ts): apart from the stream readers' module, so that their functions
 * carry no Query (their grants are what their code sends: infra/functions.test.ts).
 */
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { auditPartition, auditRecordSchema, auditSortKey, eventOfRecord, recordOfItem } from "../ledger/audit-record.ts";
import { catchUpFeed } from "../ledger/catch-up.ts";
import { shardCount } from "../ledger/shard.ts";
import { SimrootError } from "../error.ts";
import type { Ports } from "../ports.ts";
import { batchPutAll } from "../store/batch-write.ts";
import { projectionsOf } from "./outbox.ts";

/**
 * Writes again what a tenant's records project, shard by shard from the records past `after` (a sequence per shard;
 * default: every record the store still holds): for records that left the stream before their history was written
 * (its writes failing for 24 hours), or history removed by hand. Returns where each shard's walk ended (pass it back
 * as `after` to go on from there). Puts of the same items as the stream's reader writes: safe beside it.
 *
 * Then, as the stream's reader would have (it is also the feed's backstop, ledger/catch-up.ts), sequences what of them
 * the feed head does not cover: a change whose committer stopped before sequencing it, while that reader was failing,
 * stayed out of an idle tenant's feed (a revocation PEPs never learned) until the tenant's next change (review 103).
 * Throws when the feed could not be brought to them (its store refusing, or the feed blocked: see the log).
 */
export async function reprojectHistory(
  ports: Pick<Ports, "db" | "tables"> & Partial<Pick<Ports, "feedNotifier">>,
  tenantId: string,
  after: readonly number[] = [],
): Promise<number[]> {
  const reached = Array.from({ length: shardCount }, (_, shard) => after[shard] ?? 0);
  for (let shard = 0; shard < shardCount; shard++) {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await ports.db.send(
        new QueryCommand({
          TableName: ports.tables.audit,
          KeyConditionExpression: "pk = :p AND sk > :after",
          ExpressionAttributeValues: { ":p": auditPartition(tenantId, shard), ":after": auditSortKey(reached[shard]!) },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      const records = (page.Items ?? []).flatMap((item) => {
        const parsed = auditRecordSchema.safeParse(recordOfItem(item));
        return parsed.success
          ? [
              {
                event: eventOfRecord(parsed.data),
                record: parsed.data,
                expiresAt: item.expiresAt,
                indexed: item.gsi1pk !== undefined,
                sequenceNumber: "",
                streamedAt: Date.parse(parsed.data.time),
              },
            ]
          : [];
      });
      await batchPutAll(ports, projectionsOf(ports.tables, records));
      if (records.length > 0) reached[shard] = records.at(-1)!.record.seq;
      start = page.LastEvaluatedKey;
    } while (start);
  }
  // Each shard's last record, committed long enough ago that its committer's grace is over.
  const lasts = reached.flatMap((seq, shard) => (seq > 0 ? [{ tenantId, shard, seq, time: new Date(0).toISOString() }] : []));
  const { uncovered, blocked, trailing } = await catchUpFeed(lasts, ports);
  await trailing;
  if (uncovered.length > 0 || blocked.length > 0)
    throw new SimrootError(
      "feed.not_caught_up",
      "unavailable",
      `The feed of tenant ${tenantId} does not cover its records yet: see the log`,
    );
  return reached;
}
