/**
 * A snapshot lists the fleet from the `byTenant` index, which DynamoDB keeps eventually
 * consistent: an item written just before the snapshot's version may not be listed yet (a
 * revocation missed, then never learned, as deltas resume after it). So a snapshot ends with
 * a replay of the feed versions sequenced in the last `snapshotReplaySeconds` before its
 * version (read from the base table, strongly consistent): whatever the index had not caught
 * up with, the replay carries, and applied after the listing it leaves each key at its value
 * at the snapshot's version. An index lagging more than the window (AWS reports lag in
 * milliseconds; an alarm on `OnlineIndexPercentageProgress`/replication lag belongs in ops) is
 * the one case this does not cover.
 */
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { feedPartition, feedSortKey, feedVersionAttributes } from "../ledger/feed-version.ts";
import { SimrootError } from "../error.ts";
import { anchoredVersions } from "./anchor.ts";
import type { Ports } from "../ports.ts";
import type { HeadRead } from "./watch.ts";

export const snapshotReplaySeconds = 10;

/**
 * How far apart the serving instance's and the sequencers' clocks may be for the replay to keep its whole window, and how
 * far before its version's own time a snapshot's cursor may say it read that version: what a forged cursor can widen
 * the replay by (a narrowed key then learns the ids of other sites' devices that changed in that time, review 92).
 */
export const replayClockAllowanceMs = 15_000;

/**
 * The last feed version sequenced more than the window before the snapshot read its version (the replay starts after
 * it), 0 if none. Two clocks meet here: `began`, when the snapshot read its version (the cursor carries it), by the
 * serving instance's clock, and the version's time, by its sequencer's. Either may be up to `replayClockAllowanceMs`
 * ahead of the other, so the window counts back from `began`, but from no later than the version's own time when
 * `began` is within the allowance of it (review 105: on a serving instance 10 s fast, counted from `began` alone, the
 * window ended before the version the snapshot was labelled with), and from no later than `began` (review 106: a
 * version sequenced on an instance 15 s fast). A snapshot read long after its version (an idle tenant) replays nothing.
 * Whatever `began` says (the client's to send) or this instance's clock, the window starts no earlier than the
 * allowance before the version's time: a forged cursor cannot make this read the whole trail, and `replayFloor`
 * (feed.ts), which counts from that earliest, is the same on every instance and below every genuine start (review 107).
 */
export async function replayStart(
  ports: Ports,
  tenantId: string,
  version: number,
  began: number | undefined,
  slackMs = 0,
): Promise<number> {
  const windowMs = snapshotReplaySeconds * 1000 + slackMs;
  const now = ports.now().getTime();
  let start: Record<string, unknown> | undefined;
  let oldest = version;
  let since: number | undefined;
  do {
    const page = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.audit,
        KeyConditionExpression: "pk = :p AND sk <= :version",
        ExpressionAttributeValues: { ":p": feedPartition(tenantId), ":version": feedSortKey(version) },
        ProjectionExpression: "version, #time",
        ExpressionAttributeNames: { "#time": "time" },
        ScanIndexForward: false,
        ConsistentRead: true,
        Limit: 100,
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) {
      const time = Date.parse(String(item.time));
      const read = began ?? now;
      since ??= Math.max(time - replayClockAllowanceMs, Math.min(read, Math.max(time, read - replayClockAllowanceMs))) - windowMs;
      if (time < since) return Number(item.version);
      oldest = Number(item.version) - 1;
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return Math.max(0, oldest);
}

/** The entries of feed versions (after, upTo], at most `limit` versions; and the last version read. */
export async function replayPage(ports: Ports, tenantId: string, after: number, upTo: number, limit: number, head?: HeadRead) {
  // Nothing sequenced within the window: nothing to replay (and DynamoDB refuses a BETWEEN with reversed bounds).
  if (after >= upTo) return { entries: [], last: upTo, done: true };
  const page = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.audit,
      KeyConditionExpression: "pk = :p AND sk BETWEEN :from AND :to",
      ExpressionAttributeValues: { ":p": feedPartition(tenantId), ":from": feedSortKey(after + 1), ":to": feedSortKey(upTo) },
      ProjectionExpression: feedVersionAttributes.map((name) => `#${name}`).join(", "),
      ExpressionAttributeNames: Object.fromEntries(feedVersionAttributes.map((name) => [`#${name}`, name])),
      ConsistentRead: true,
      Limit: Math.max(1, limit),
    }),
  );
  const items = page.Items ?? [];
  // Served only once found in the chain that ends at the feed head (anchor.ts); a version missing (or renumbered)
  // within the window is not bridged: the snapshot is refused rather than served unchecked.
  if (items.some((item, index) => Number(item.version) !== after + 1 + index)) {
    throw new SimrootError("feed.unverifiable", "unavailable", `The feed cannot be served: versions after ${after} are missing`, {
      detail: { status: 503 },
    });
  }
  const records = await anchoredVersions(ports, tenantId, items, head);
  const entries = records.flatMap(
    (record) => (record.entries ?? []) as { kind: string; key: string; value: Record<string, unknown> | null }[],
  );
  return {
    entries,
    last: records.length > 0 ? Number(records.at(-1)!.version) : upTo,
    done: !page.LastEvaluatedKey || records.length === 0,
  };
}
