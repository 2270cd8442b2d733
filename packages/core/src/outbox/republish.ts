/**
 * Events published again from their committed records: for records the outbox's stream mapping dropped (its function
 * did not run for the second half of the stream's day, so it did not even hold them: infra/outbox.ts
 * `StreamDiscardsQueue` names each dropped batch, with when the stream got its first and last record). The records stay
 * in the audit table; this walks a tenant's shards over a time window and hands their records to the outbox's own path
 * (`publishFromStream`: the same routing, and the same dead letters for what the bus refuses for good). Consumers take
 * an event again as they take a redelivery: by its id (a webhook delivery, a rule's firing, an applied fact).
 */
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { DeleteCommand, GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { Publisher } from "../event/event.ts";
import { SimrootError } from "../error.ts";
import { deadLetterPartition, outboxDeadLetterRule } from "../event/dead-letter-record.ts";
import { redeliverWithinDays } from "../event/redelivery-window.ts";
import { auditPartition, auditRecordSchema, auditSortKey, hashHolds, recordOfItem } from "../ledger/audit-record.ts";
import { shardCount } from "../ledger/shard.ts";
import { queryAll } from "../store/query-all.ts";
import type { Ports } from "../ports.ts";
import { publishFromStream, type OutboxStreamRecord } from "./outbox.ts";

/** A record's time is its committer's clock: a window is widened by as much as instances' clocks may differ. */
const clockSlackMs = 5 * 60 * 1000;
/**
 * How old a window may be: consumers know an event they took by its id for 7 days (automation's firings, the
 * detectors' once-items), and the stream drops what it dropped at 24 hours. A republished event older than that would
 * fire rules again (review 111).
 */
export const republishWithinDays = redeliverWithinDays;
/** The highest sort key a record can have: the shard's other items (its head) sort after digits. */
const lastSortKey = "9".repeat(12);

type Store = Pick<Ports, "db" | "tables">;

async function recordAt(ports: Store, tenantId: string, shard: number, seq: number) {
  const { Item } = await ports.db.send(
    new GetCommand({
      TableName: ports.tables.audit,
      Key: { pk: auditPartition(tenantId, shard), sk: auditSortKey(seq) },
      ConsistentRead: true,
    }),
  );
  return Item;
}

async function endSeq(ports: Store, tenantId: string, shard: number, forward: boolean): Promise<number | undefined> {
  const { Items } = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.audit,
      KeyConditionExpression: "pk = :p AND sk BETWEEN :first AND :last",
      ExpressionAttributeValues: { ":p": auditPartition(tenantId, shard), ":first": auditSortKey(0), ":last": lastSortKey },
      ScanIndexForward: forward,
      Limit: 1,
      ConsistentRead: true,
      ProjectionExpression: "sk",
    }),
  );
  return Items?.[0] ? Number(Items[0].sk) : undefined;
}

/**
 * The first sequence of the shard whose record is at or after `from`: records follow each other in time on a shard
 * (each commit follows the shard's head), up to the clock slack the caller allows for. Binary search: ~40 reads for a
 * shard of a billion records.
 */
async function firstAtOrAfter(ports: Store, tenantId: string, shard: number, from: number): Promise<number | undefined> {
  let low = await endSeq(ports, tenantId, shard, true);
  const high = await endSeq(ports, tenantId, shard, false);
  if (low === undefined || high === undefined) return undefined;
  let top = high + 1;
  while (low < top) {
    const middle = Math.floor((low + top) / 2);
    const item = await recordAt(ports, tenantId, shard, middle);
    // A record gone from the middle (expired) is before the window: the retention removes the oldest first.
    if (!item || Date.parse(String(item.time)) < from) low = middle + 1;
    else top = middle;
  }
  return low > high ? undefined : low;
}

/** The tenant's held letters (the outbox went on without their events: outbox.ts), by event id: key and `deadAt`. */
async function heldLetters(ports: Store, tenantId: string): Promise<Map<string, { sk: string; deadAt: string }>> {
  const items = await queryAll(ports.db, {
    TableName: ports.tables.control,
    KeyConditionExpression: "pk = :p",
    FilterExpression: "#rule = :outbox AND held = :held",
    ExpressionAttributeNames: { "#rule": "rule" },
    ExpressionAttributeValues: { ":p": deadLetterPartition(tenantId), ":outbox": outboxDeadLetterRule, ":held": true },
    ProjectionExpression: "sk, eventId, deadAt",
    ConsistentRead: true,
  });
  return new Map(items.map((item) => [String(item.eventId), { sk: String(item.sk), deadAt: String(item.deadAt) }]));
}

/**
 * Publishes again the events of a tenant's records committed between `from` and `to` (both widened by 5 minutes of
 * clock slack), shard by shard, in order: each record as committed (its hash recomputes and links to the record before
 * it), else not published and counted `unverified`. Returns how many were published, how many the bus refused for good
 * (dead letters, rule `outbox`) and how many did not verify; throws when the bus did not take a step (run it again: what
 * was published is published again, which consumers take as a redelivery), or when the window is older than
 * `republishWithinDays`. An event published here whose letter says the outbox held it loses that letter (`cleared`): a
 * redrive would publish it once more, and the list of dead letters would name as waiting what the bus has (review 111).
 */
export async function republishEvents(
  publisher: Publisher,
  ports: Store & Partial<Pick<Ports, "now">>,
  tenantId: string,
  window: { readonly from: Date; readonly to: Date },
): Promise<{ published: number; refused: number; unverified: number; cleared: number }> {
  const from = window.from.getTime() - clockSlackMs;
  const to = window.to.getTime() + clockSlackMs;
  const now = (ports.now?.() ?? new Date()).getTime();
  if (from < now - republishWithinDays * 86_400_000)
    throw new SimrootError(
      "outbox.republish_too_old",
      "input",
      `A window from ${window.from.toISOString()} is older than ${republishWithinDays} days: consumers no longer know its events by id, and would act on them again`,
    );
  let published = 0;
  let refused = 0;
  let unverified = 0;
  let cleared = 0;
  const held = await heldLetters(ports, tenantId);
  for (let shard = 0; shard < shardCount; shard++) {
    const first = await firstAtOrAfter(ports, tenantId, shard, from);
    if (first === undefined) continue;
    let start: Record<string, unknown> | undefined;
    let past = false;
    // The hash of the record before the page's first, to check each record's link to it (a record changed in the store
    // since its commit would be published as it now reads: review 111).
    let previousHash = first > 0 ? (await recordAt(ports, tenantId, shard, first - 1))?.hash : undefined;
    do {
      const page = await ports.db.send(
        new QueryCommand({
          TableName: ports.tables.audit,
          KeyConditionExpression: "pk = :p AND sk BETWEEN :first AND :last",
          ExpressionAttributeValues: { ":p": auditPartition(tenantId, shard), ":first": auditSortKey(first), ":last": lastSortKey },
          ConsistentRead: true,
          ExclusiveStartKey: start,
          Limit: 100,
        }),
      );
      const items = (page.Items ?? []).filter((item) => {
        if (past) return false;
        const time = Date.parse(String(item.time));
        // Past the window: the shard's later records are too (within the slack). A time that does not parse stops
        // nothing: its record is checked below (review 111: it ended the shard's walk).
        if (time > to) {
          past = true;
          return false;
        }
        const parsed = auditRecordSchema.safeParse(recordOfItem(item));
        const verifies = parsed.success && hashHolds(parsed.data) && (previousHash === undefined || parsed.data.prevHash === previousHash);
        previousHash = typeof item.hash === "string" ? item.hash : undefined;
        if (!verifies) {
          unverified += 1;
          console.error(
            JSON.stringify({
              level: "error",
              component: "outbox",
              message: "a record to publish again does not verify (changed since its commit, or not a record): not published",
              pk: item.pk,
              sk: item.sk,
              eventId: item.eventId,
            }),
          );
        }
        return verifies;
      });
      // As the stream hands them over, got now: a republished step is never held (outbox.ts `outboxHoldAfterSeconds`).
      const records: OutboxStreamRecord[] = items.map((item) => ({
        eventName: "INSERT",
        dynamodb: {
          NewImage: marshall(item, { removeUndefinedValues: true }),
          SequenceNumber: String(item.sk),
          ApproximateCreationDateTime: new Date(),
        },
      }));
      const result = await publishFromStream(publisher, records, ports);
      published += result.published;
      refused += result.refused.length;
      if (result.failedAt !== undefined)
        throw new SimrootError(
          "outbox.republish_failed",
          "unavailable",
          `The bus did not take the events of tenant ${tenantId} from shard ${shard} record ${Number(result.failedAt)}: ${String((result.error as Error)?.message ?? result.error)}`,
        );
      // The step is on the bus, but for what it refused for good (their letters are not `held`).
      const refusedIds = new Set(result.refused.map((one) => one.record.eventId));
      for (const item of items) {
        const letter = held.get(String(item.eventId));
        if (!letter || refusedIds.has(String(item.eventId))) continue;
        try {
          await ports.db.send(
            new DeleteCommand({
              TableName: ports.tables.control,
              Key: { pk: deadLetterPartition(tenantId), sk: letter.sk },
              // The letter read, not one written since (or redriven meanwhile: nothing to clear).
              ConditionExpression: "deadAt = :deadAt AND held = :held",
              ExpressionAttributeValues: { ":deadAt": letter.deadAt, ":held": true },
            }),
          );
          cleared += 1;
        } catch (error) {
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
        }
        held.delete(String(item.eventId));
      }
      start = page.LastEvaluatedKey;
    } while (start && !past);
  }
  return { published, refused, unverified, cleared };
}
