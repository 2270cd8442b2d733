/**
 * The feed version records served (deltas, a snapshot's replay) checked as one chain that ends at the feed head item's
 * hash. The head item is in the control table; the versions are in the audit table, which alone could otherwise change
 * what PEPs are served (a version altered in place was served, signed, until the verifier found it). Each version must
 * hash to what it says and name the one before; the last one served must lead, version by version, to the head read.
 * The hashes found so are kept per instance, so a herd, or a PEP paging through many versions, reads the chain once.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { SimrootError } from "../error.ts";
import {
  feedHeadKey,
  feedVersionAttributes,
  feedVersionSchema,
  feedVersionsAfter,
  unhashedVersion,
  versionHash,
} from "../ledger/feed-version.ts";
import type { FeedVersionRecord } from "../ledger/feed-version.ts";
import type { Ports } from "../ports.ts";
import type { HeadRead } from "./watch.ts";

/**
 * How far past the last version served the chain is read to the head; a PEP further behind takes a snapshot. At the
 * design's 100 versions/s of one busy tenant, 200 s of versions (hours for most tenants); read once per instance, about
 * 20 MB at worst.
 */
export const maxAnchorDistance = 20_000;
/** Hashes kept per instance across tenants (about 100 bytes each): past this the least recently anchored tenant goes. */
const maxKept = 200_000;

/** Per store client, per table and tenant: the hash of each version found in a chain that ends at a head read. */
const verified = new WeakMap<object, Map<string, Map<number, string>>>();

function hashesOf(ports: Ports, tenantId: string): Map<number, string> {
  let tenants = verified.get(ports.db);
  if (!tenants) verified.set(ports.db, (tenants = new Map()));
  const key = `${ports.tables.audit}|${tenantId}`;
  const hashes = tenants.get(key) ?? new Map<number, string>();
  // Most recently anchored last.
  tenants.delete(key);
  tenants.set(key, hashes);
  return hashes;
}

/** Keeps at most `maxAnchorDistance` hashes per tenant and `maxKept` in all, dropping the oldest. */
function bound(ports: Ports, hashes: Map<number, string>) {
  while (hashes.size > maxAnchorDistance) hashes.delete(hashes.keys().next().value as number);
  const tenants = verified.get(ports.db)!;
  let kept = 0;
  for (const tenant of tenants.values()) kept += tenant.size;
  for (const [tenant, held] of tenants) {
    if (kept <= maxKept || held === hashes) break;
    kept -= held.size;
    tenants.delete(tenant);
  }
}

/** Walks to the head in flight, by table, tenant, version and hash. */
const walks = new Map<string, Promise<void>>();

const unverifiable = (why: string) =>
  new SimrootError("feed.unverifiable", "unavailable", `The feed cannot be served: ${why}`, { detail: { status: 503 } });

/** Why `records` (contiguous versions, in order) are not one chain of well-formed versions, or undefined. */
function chainDefect(records: readonly FeedVersionRecord[]): string | undefined {
  for (const [index, record] of records.entries()) {
    if (versionHash(unhashedVersion(record)) !== record.hash) return `feed version ${record.version} does not hash to what it says`;
    const before = records[index - 1];
    if (before && record.prevHash !== before.hash) return `feed version ${record.version} does not follow version ${before.version}`;
  }
  return undefined;
}

/**
 * The version records `items` (read from the audit table, contiguous and in order), parsed, once they are found in the
 * chain that ends at the feed head; else the feed is not served (503: the verifier says more).
 */
export async function anchoredVersions(
  ports: Ports,
  tenantId: string,
  items: readonly Record<string, unknown>[],
  /** The head as this request read it already (consistently, at or past the versions): not read again. */
  head?: HeadRead,
): Promise<FeedVersionRecord[]> {
  const records = items.map((item) => {
    const parsed = feedVersionSchema.safeParse(item);
    if (!parsed.success) throw unverifiable(`feed version ${String(item.version)} is malformed`);
    return parsed.data;
  });
  const last = records.at(-1);
  if (!last) return records;
  const defect = chainDefect(records);
  if (defect) throw unverifiable(defect);
  if (hashesOf(ports, tenantId).get(last.version) === last.hash) return records;
  // Polls woken together (a herd, with other versions held or limits) share one walk to the head.
  const key = `${ports.tables.audit}|${tenantId}|${last.version}|${last.hash}`;
  let walk = walks.get(key);
  if (!walk) {
    walk = anchorLast(ports, tenantId, last, head).finally(() => walks.delete(key));
    walks.set(key, walk);
  }
  await walk;
  return records;
}

/** Walks from `last` (already found chained to the versions before it) to the feed head, and keeps the hashes found. */
async function anchorLast(ports: Ports, tenantId: string, last: FeedVersionRecord, read?: HeadRead): Promise<void> {
  const head =
    read ??
    (await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }))).Item;
  const headVersion = Number(head?.version ?? 0);
  if (headVersion < last.version) throw unverifiable(`feed version ${last.version} is past the head (${headVersion})`);
  if (headVersion - last.version > maxAnchorDistance) {
    throw new SimrootError("feed.snapshot_required", "conflict", `Take a snapshot: version ${last.version} is far behind the head`, {
      detail: { status: 410 },
    });
  }
  const later: FeedVersionRecord[] = [];
  // Page by page from the last version read (each page starts after the one before; an empty page ends the walk).
  for (let page = 1; later.length < headVersion - last.version && page > 0; ) {
    const { items: found } = await feedVersionsAfter(ports.db, ports.tables, tenantId, last.version + later.length, feedVersionAttributes, {
      limit: 1000,
      upTo: headVersion,
    });
    for (const item of found) {
      const parsed = feedVersionSchema.safeParse(item);
      if (!parsed.success) throw unverifiable(`feed version ${String(item.version)} is malformed`);
      later.push(parsed.data);
    }
    page = found.length;
  }
  const chain = [last, ...later];
  if (chain.length !== headVersion - last.version + 1 || chain.some((record, index) => record.version !== last.version + index)) {
    throw unverifiable(`the versions from ${last.version} to the head (${headVersion}) are not all there`);
  }
  const tail = chainDefect(chain);
  if (tail) throw unverifiable(tail);
  if (chain.at(-1)!.hash !== head?.hash) throw unverifiable(`the versions do not end at the head (${headVersion})`);
  const hashes = hashesOf(ports, tenantId);
  for (const record of chain) hashes.set(record.version, record.hash);
  bound(ports, hashes);
}
