import { createPublicKey, verify } from "node:crypto";
import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { auditPartition, auditRecordSchema, auditSortKey, recordOfItem, unhashed, type AuditRecord } from "../ledger/audit-record.ts";
import {
  feedHeadKey,
  feedPartition,
  feedSortKey,
  feedVersionSchema,
  shardHashesAt,
  unhashedVersion,
  versionHash,
  type FeedVersionRecord,
} from "../ledger/feed-version.ts";
import { shardCount } from "../ledger/shard.ts";
import { cutEntries, cutMismatch, entryId, leftDefect, leftIds, type CutEntry, type CutRecord, type LeftOut } from "../ledger/cut.ts";
import { chainedRecordFeed } from "../ledger/sequencer.ts";
import { canonicalJson, chainHash, genesisHash } from "../ledger/chain.ts";
import { headKey } from "../ledger/ledger.ts";
import { decodeCursor, encodeCursor, pageInput, type Page } from "../page.ts";
import { retiredFeedPublicKeys } from "../config.ts";
import type { FeedSigner } from "../feed/signer.ts";
import type { Ports } from "../ports.ts";
import { verb } from "../verb.ts";
import { subjectPage } from "./subject.ts";

const stored = (item: Record<string, unknown>): AuditRecord => auditRecordSchema.parse(recordOfItem(item));

export const listAuditInput = z.object({
  subject: z.string().min(1).optional().meta({ description: "only records about this subject (a device id)" }),
  shard: z.coerce
    .number()
    .int()
    .min(0)
    .max(shardCount - 1)
    .optional()
    .meta({ description: "only this ledger shard's chain (by sequence)" }),
  from: z.iso.datetime({ offset: true }).optional().meta({
    description:
      "only records at or after this time. Without `subject`, the chains are read in order and filtered: a page reads at most 10 records per record it may hold (1,000 at least), so it may come back short or empty with a `next` cursor; follow it, or name a `subject` for a walk by time",
  }),
  to: z.iso.datetime({ offset: true }).optional().meta({ description: "only records before this time (as `from` reads)" }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(2048).optional(),
});

const shardOfPartition = (tenantId: string, pk: unknown) =>
  Array.from({ length: shardCount }, (_, shard) => shard).find((shard) => auditPartition(tenantId, shard) === pk);

/**
 * A tenant's audit records in order: one subject's by time, one shard's chain by sequence, or
 * every shard's chain in turn (shard 0 first). A cursor names the shard it stopped in.
 */
export const listAudit = verb(listAuditInput, async (ports, ctx, input): Promise<Page<AuditRecord>> => {
  const bySubject = input.subject !== undefined;
  const range = (field: string) => [input.from && `${field} >= :from`, input.to && `${field} < :to`].filter(Boolean) as string[];
  // Records carry UTC times (toISOString): compare bounds given with another offset in the same terms.
  const from = input.from && new Date(input.from).toISOString();
  const to = input.to && new Date(input.to).toISOString();
  const values = { ...(from ? { ":from": from } : {}), ...(to ? { ":to": to } : {}) };
  // An empty range names no records (and a BETWEEN whose bounds are reversed is refused by DynamoDB).
  if (from && to && from >= to) return { items: [], next: undefined };
  if (bySubject) return subjectPage(ports, ctx.tenantId, input.subject!, input.limit, input.cursor, from, to);
  let start = input.cursor === undefined ? undefined : decodeCursor(input.cursor, {});
  let shard = start ? shardOfPartition(ctx.tenantId, start.pk) : (input.shard ?? 0);
  if (
    shard === undefined ||
    (input.shard !== undefined && shard !== input.shard) ||
    (start && start.pk !== auditPartition(ctx.tenantId, shard))
  ) {
    decodeCursor(input.cursor, { pk: "" }); // throws: not a cursor of this tenant's chains
  }
  const items: AuditRecord[] = [];
  const filtered = range("#time").length > 0;
  // A time bound filters after the read: each query reads at least 100 records (asking for what the page still lacked
  // read one record a query), and a page reads at most `scanBudget` records, then answers what it found with a cursor
  // (review 113: a bound that few records match read the tenant's whole trail in one request, past the gateway's 30 s).
  const scanBudget = Math.max(auditScanPerRecord * input.limit, auditScanFloor);
  let scanned = 0;
  for (;;) {
    const wanted = input.limit - items.length;
    const result = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.audit,
        KeyConditionExpression: "pk = :p",
        ...(filtered ? { FilterExpression: range("#time").join(" AND "), ExpressionAttributeNames: { "#time": "time" } } : {}),
        ExpressionAttributeValues: { ":p": auditPartition(ctx.tenantId, shard!), ...values },
        Limit: filtered ? Math.max(wanted, 100) : wanted,
        ExclusiveStartKey: start,
      }),
    );
    scanned += result.ScannedCount ?? 0;
    const found = result.Items ?? [];
    if (found.length > wanted) {
      // More than the page holds: it ends at the last record shown.
      const shown = found.slice(0, wanted);
      items.push(...shown.map(stored));
      const last = shown.at(-1)!;
      return { items, next: encodeCursor({ pk: last.pk, sk: last.sk }) };
    }
    items.push(...found.map(stored));
    start = result.LastEvaluatedKey;
    if (start && (items.length >= input.limit || scanned >= scanBudget)) return { items, next: encodeCursor(start) };
    if (start) continue;
    if (input.shard !== undefined || shard! + 1 >= shardCount) return { items, next: undefined };
    shard = shard! + 1;
    if (items.length >= input.limit || scanned >= scanBudget)
      return { items, next: encodeCursor({ pk: auditPartition(ctx.tenantId, shard), sk: auditSortKey(0) }) };
  }
});

/** A time-bounded page of the audit trail reads at most this many records per record it may hold, and at least the floor. */
export const auditScanPerRecord = 10;
export const auditScanFloor = 1_000;

export interface ChainVerification {
  readonly valid: boolean;
  /** Audit records checked, over every shard (from the checkpoint, when the walk started at one). */
  readonly checked: number;
  /** The feed version the walk started after: 0 for the whole chain, else a signed checkpoint's (see checkpoint.ts). */
  readonly from: number;
  /** The feed version the walk reached (the version chain covers every shard's head). */
  readonly lastSeq: number;
  /** The hash of that feed version. */
  readonly lastHash: string;
  /** The first record that does not chain (its shard, or `feed` for a feed version), and why. */
  readonly brokenAt?: { readonly seq: number; readonly reason: string; readonly shard?: number | "feed" };
}

/**
 * Where a walk starts: after feed version `seq` (hash `hash`), which covers every shard up to
 * `vector` (the records there hash to `shardHashes`); `base` is the vector before that
 * version's cut. The genesis is version 0 over empty shards.
 */
export interface ChainPoint {
  readonly seq: number;
  readonly hash: string;
  readonly vector: readonly number[];
  readonly shardHashes: readonly string[];
  readonly base: readonly number[];
}

/**
 * The bytes a signature over a chain point covers: its `kind` (so a checkpoint of one kind cannot
 * stand for another), the tenant, the point, and what else that kind commits to.
 */
export const chainPointBytes = (kind: string, tenantId: string, point: ChainPoint, extra: Record<string, unknown> = {}) =>
  Buffer.from(
    canonicalJson({
      kind,
      tenantId,
      seq: point.seq,
      hash: point.hash,
      vector: point.vector,
      shardHashes: point.shardHashes,
      base: point.base,
      ...extra,
    }),
  );

/** True when `signature` (base64) over `bytes` verifies under `publicKeyPem`; false for no key or anything malformed. */
export function signatureHolds(bytes: Buffer, publicKeyPem: string | undefined, signature: string): boolean {
  if (publicKeyPem === undefined) return false;
  try {
    return verify(null, bytes, createPublicKey(publicKeyPem), Buffer.from(signature, "base64"));
  } catch {
    return false;
  }
}

const samePem = (a: string, b: string) => a.replace(/\s+/g, "") === b.replace(/\s+/g, "") && a.trim() !== "";

/**
 * A signed chain point as stored (an audit or archive checkpoint item), read back with the key that
 * may vouch for it: the current feed key, or one it replaced that the operator still trusts
 * (`SIMROOT_FEED_RETIRED_PUBLIC_KEYS`, after a rotation); `publicKeyPem` is undefined when none may.
 */
export function storedChainPoint(item: Record<string, unknown>, signer: FeedSigner) {
  const list = (value: unknown) => (Array.isArray(value) ? value : []);
  const point: ChainPoint = {
    seq: Number(item.seq),
    hash: String(item.hash),
    vector: list(item.vector).map(Number),
    shardHashes: list(item.shardHashes).map(String),
    base: list(item.base).map(Number),
  };
  const retired = item.keyId !== signer.keyId;
  const publicKeyPem = retired ? retiredFeedPublicKeys().find((pem) => samePem(pem, String(item.publicKeyPem ?? ""))) : signer.publicKeyPem;
  return { point, retired, publicKeyPem, signature: String(item.signature) };
}

export const genesisPoint = (): ChainPoint => ({
  seq: 0,
  hash: genesisHash,
  vector: new Array<number>(shardCount).fill(0),
  shardHashes: new Array<string>(shardCount).fill(genesisHash),
  base: new Array<number>(shardCount).fill(0),
});

interface ShardWalk {
  readonly hashes: Map<number, string>;
  readonly feeds: Map<number, { kind: string; key: string; value?: unknown; rev?: number }[]>;
  readonly broken?: { seq: number; reason: string };
}

/** What a bounded walk hands over: every stored item it found valid (an audit record, or a feed version), in order. */
export type KeepWalked = (item: AuditRecord | FeedVersionRecord, where: number | "feed") => void;

/**
 * Walks one shard's chain after `after`: every record must follow its predecessor and hash to
 * what it says; the walk ends at the shard head, or exactly at `upTo` when bounded.
 */
async function walkShard(
  ports: Pick<Ports, "db" | "tables">,
  tenantId: string,
  shard: number,
  after: { seq: number; hash: string },
  upTo: number | undefined,
  keep: KeepWalked | undefined,
): Promise<ShardWalk> {
  const hashes = new Map<number, string>([[after.seq, after.hash]]);
  const feeds = new Map<number, { kind: string; key: string; value?: unknown; rev?: number }[]>();
  let expectedSeq = after.seq + 1;
  let previous = after.hash;
  let cursor: Record<string, unknown> | undefined;
  const broken = (reason: string): ShardWalk => ({ hashes, feeds, broken: { seq: expectedSeq, reason } });
  if (upTo !== undefined && upTo <= after.seq) return { hashes, feeds };
  do {
    const page = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.audit,
        KeyConditionExpression:
          upTo !== undefined ? "pk = :p AND sk BETWEEN :from AND :to" : after.seq > 0 ? "pk = :p AND sk > :after" : "pk = :p",
        ExpressionAttributeValues: {
          ":p": auditPartition(tenantId, shard),
          ...(upTo !== undefined
            ? { ":from": auditSortKey(after.seq + 1), ":to": auditSortKey(upTo) }
            : after.seq > 0
              ? { ":after": auditSortKey(after.seq) }
              : {}),
        },
        ExclusiveStartKey: cursor,
        ConsistentRead: true,
      }),
    );
    for (const item of page.Items ?? []) {
      const parsed = auditRecordSchema.safeParse(recordOfItem(item));
      if (!parsed.success) return broken("record is malformed");
      const record = parsed.data;
      if (record.seq !== expectedSeq) return broken(`expected sequence ${expectedSeq}, found ${record.seq}`);
      if (record.shard !== shard) return broken(`record says shard ${record.shard}`);
      if (record.prevHash !== previous) return broken("prevHash does not match the previous record");
      if (chainHash(previous, unhashed(record)) !== record.hash) return broken("hash does not match the record's content");
      previous = record.hash;
      hashes.set(record.seq, record.hash);
      if (record.feed) feeds.set(record.seq, record.feed);
      keep?.(record, shard);
      expectedSeq += 1;
    }
    cursor = page.LastEvaluatedKey;
  } while (cursor);
  if (upTo !== undefined) return expectedSeq - 1 === upTo ? { hashes, feeds } : broken(`records are missing up to ${upTo}`);
  const { Item: head } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: headKey(tenantId, shard), ConsistentRead: true }),
  );
  const headSeq = head ? Number(head.seq) : 0;
  if (headSeq !== expectedSeq - 1 || (head && head.hash !== previous))
    return broken(`the chain head is at ${headSeq}: records are missing or altered at the end`);
  return { hashes, feeds };
}

/** The tenant's feed versions after `after`, up to `until` (every one when it is undefined), page by page. */
async function* feedVersionPages(ports: Pick<Ports, "db" | "tables">, tenantId: string, after: number, until?: number) {
  let cursor: Record<string, unknown> | undefined;
  do {
    const page = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.audit,
        KeyConditionExpression:
          until !== undefined ? "pk = :p AND sk BETWEEN :from AND :to" : after > 0 ? "pk = :p AND sk > :after" : "pk = :p",
        ExpressionAttributeValues: {
          ":p": feedPartition(tenantId),
          ...(until !== undefined
            ? { ":from": feedSortKey(after + 1), ":to": feedSortKey(until) }
            : after > 0
              ? { ":after": feedSortKey(after) }
              : {}),
        },
        ExclusiveStartKey: cursor,
        ConsistentRead: true,
      }),
    );
    yield page.Items ?? [];
    cursor = page.LastEvaluatedKey;
  } while (cursor);
}

export interface WalkOptions {
  /**
   * Walk only up to this feed version (and every shard up to the records it covers), not to the
   * heads: the archiver's bounded walk (archive.ts). The shard walks then start once its vector is read.
   */
  readonly until?: number;
  /** Receives each audit record and feed version the walk found valid. */
  readonly keep?: KeepWalked;
  /**
   * The hashes signed checkpoints hold, by feed version: the walk must pass through each it reaches (review 125: a
   * whole walk from genesis recomputed every hash a rewrite had recomputed too, and called the rewritten trail intact).
   */
  readonly signed?: ReadonlyMap<number, string>;
}

/**
 * Walks every shard's chain after `start` (the whole trail by default), then the feed version
 * chain: each version must follow its predecessor and hash to what it says, name shard heads
 * whose hashes are the records' own, and carry only entries of records in its range; the last
 * must be the feed head (or `until`, for a bounded walk). `reached` is where a later walk may start.
 */
export async function verifyAuditChain(
  ports: Pick<Ports, "db" | "tables">,
  tenantId: string,
  start: ChainPoint = genesisPoint(),
  options: WalkOptions = {},
): Promise<ChainVerification & { readonly reached: ChainPoint }> {
  const { until, keep, signed } = options;
  // A bounded walk reads its versions first: the last one's vector is where each shard's walk ends.
  const bounded: Record<string, unknown>[] = [];
  if (until !== undefined) for await (const items of feedVersionPages(ports, tenantId, start.seq, until)) bounded.push(...items);
  const boundVector = until === undefined ? undefined : ((bounded.at(-1)?.vector as number[] | undefined) ?? [...start.vector]);
  const walks = await Promise.all(
    Array.from({ length: shardCount }, (_, shard) =>
      walkShard(
        ports,
        tenantId,
        shard,
        { seq: start.vector[shard] ?? 0, hash: start.shardHashes[shard] ?? genesisHash },
        boundVector ? Number(boundVector[shard] ?? 0) : undefined,
        keep,
      ),
    ),
  );
  const checked = walks.reduce((sum, walk) => sum + walk.hashes.size - 1, 0);
  let version = start.seq;
  let previous = start.hash;
  /** Where the walk stood before the newest version it walked (the head may be there: see the end), and whether that version moved the cut. */
  let beforeLast: ChainPoint | undefined;
  let lastMoved = false;
  let vector = [...start.vector];
  let shardHashes = [...start.shardHashes];
  let base = [...start.base];
  const result = (
    brokenAt?: ChainVerification["brokenAt"],
    reached: ChainPoint = { seq: version, hash: previous, vector, shardHashes, base },
  ) => ({
    valid: !brokenAt,
    checked,
    from: start.seq,
    lastSeq: reached.seq,
    lastHash: reached.hash,
    ...(brokenAt ? { brokenAt } : {}),
    reached,
  });
  for (const [shard, walk] of walks.entries()) if (walk.broken) return result({ ...walk.broken, shard });
  /**
   * The versions of one cut (a run's, sharing its vector) must carry, between them and in order, exactly the entries
   * the records in the cut give (cut.ts): every change, one entry per key, each from its key's last record, with its
   * value. Undefined for a cut whose first versions lie before the walk.
   */
  let cut: { base: readonly number[]; vector: readonly number[]; entries: CutEntry[]; left: LeftOut[]; last: number } | undefined;
  /** Per address, the highest binding revision served so far in the walk (carried, or named as overtaking one left out). */
  const servedRev = new Map<string, number>();
  const cutDefect = async (): Promise<string | undefined> => {
    if (!cut) return undefined;
    const { base: from, vector: to } = cut;
    const perShard = walks.map((walk, shard) =>
      Array.from({ length: (to[shard] ?? 0) - (from[shard] ?? 0) }, (_, n) => {
        const seq = (from[shard] ?? 0) + n + 1;
        return { seq, feed: walk.feeds.get(seq) as CutRecord["feed"] };
      }),
    );
    const derived = cutEntries(perShard);
    // A binding's change left out names a later change of it that an earlier version carried: in the walk, or before
    // its start, read in the chain that ends at the (signed) start point, not by key alone.
    const read = new Map<string, CutRecord["feed"]>();
    for (const { by } of cut.left) {
      if (by.seq > (start.vector[by.shard] ?? 0)) continue;
      const feed = await chainedRecordFeed(ports.db, ports.tables, tenantId, by, {
        seq: start.vector[by.shard] ?? 0,
        hash: start.shardHashes[by.shard] ?? genesisHash,
      });
      if (typeof feed === "string") return `feed version ${cut.last} names ${feed}`;
      read.set(`${by.shard}|${by.seq}`, feed);
    }
    const feedAt = ({ shard, seq }: { shard: number; seq: number }) =>
      (walks[shard]?.feeds.get(seq) as CutRecord["feed"]) ?? read.get(`${shard}|${seq}`);
    const leftReason = leftDefect(derived, cut.left, from, feedAt);
    if (leftReason) return `feed version ${cut.last} ${leftReason}`;
    const omitted = leftIds(cut.left);
    const mismatch = cutMismatch(derived, cut.entries, omitted);
    if (mismatch) return `feed version ${cut.last} ${mismatch}`;
    // An address's changes are served in revision order: never one at or below a revision served before in the walk
    // (a feed re-cut so that a takeover is undone by the change it overtook still has every cut match its records).
    for (const { key, by } of cut.left) {
      const rev = feedAt(by)?.find((change) => change.kind === "binding" && change.key === key)?.rev ?? 0;
      servedRev.set(key, Math.max(servedRev.get(key) ?? 0, rev));
    }
    for (const { entry, rev } of derived) {
      if (entry.kind !== "binding" || rev === undefined || omitted.has(entryId(entry))) continue;
      const before = servedRev.get(entry.key) ?? 0;
      if (rev <= before) return `feed version ${cut.last} serves binding ${entry.key} at revision ${rev} after revision ${before}`;
      servedRev.set(entry.key, rev);
    }
    return undefined;
  };
  /** The reason a stored feed version does not continue the walk, or undefined when it does (the walk then moves past it). */
  const follow = async (item: Record<string, unknown>): Promise<string | undefined> => {
    const parsed = feedVersionSchema.safeParse(item);
    if (!parsed.success) return "feed version is malformed";
    const record = parsed.data;
    if (record.version !== version + 1) return `expected feed version ${version + 1}, found ${record.version}`;
    if (record.prevHash !== previous) return "prevHash does not match the previous feed version";
    if (versionHash(unhashedVersion(record)) !== record.hash) return "hash does not match the feed version's content";
    const vouched = signed?.get(record.version);
    if (vouched !== undefined && vouched !== record.hash)
      return `feed version ${record.version} is not the one its signed checkpoint vouches for`;
    // One canonical form: a whole list of 16 (versions written before `heads`), or the heads of exactly the shards that moved.
    if ((record.shardHashes === undefined) === (record.heads === undefined))
      return "feed version names its shard heads twice or not at all";
    if (record.shardHashes !== undefined && record.shardHashes.length !== shardCount)
      return "feed version names the wrong number of shard heads";
    const moved = record.vector.flatMap((to, shard) => (to === vector[shard] ? [] : [String(shard)]));
    if (record.heads !== undefined && canonicalJson(Object.keys(record.heads).sort()) !== canonicalJson(moved.sort())) {
      return "feed version's heads are not those of the shards that moved";
    }
    const heads = shardHashesAt(record, shardHashes);
    for (let shard = 0; shard < shardCount; shard++) {
      const to = record.vector[shard] ?? 0;
      if (to < vector[shard]!) return `shard ${shard} goes back`;
      if (walks[shard]!.hashes.get(to) !== heads[shard]) return `shard ${shard} head at ${to} is not the chain's`;
    }
    const before: ChainPoint = { seq: version, hash: previous, vector, shardHashes, base };
    // Versions written from one cut share its vector: their entries lie between the cut before and this one.
    if (record.vector.some((to, shard) => to !== vector[shard])) {
      const defect = await cutDefect();
      if (defect) return defect;
      base = vector;
      cut = { base, vector: record.vector, entries: [], left: [], last: record.version };
    } else if (cut) cut.last = record.version;
    cut?.entries.push(...record.entries);
    cut?.left.push(...(record.left ?? []));
    for (const entry of record.entries) {
      const inRange = entry.seq > (base[entry.shard] ?? 0) && entry.seq <= (record.vector[entry.shard] ?? 0);
      const own = walks[entry.shard]?.feeds.get(entry.seq)?.findLast((change) => change.kind === entry.kind && change.key === entry.key);
      if (!inRange || !own) return `entry ${entry.kind} ${entry.key} is not in shard ${entry.shard}'s records`;
      // The record's own value: only an address that moved between shards within one cut, in records written before
      // binding revisions, carries the store's (cut.ts).
      if ((entry.kind !== "binding" || own.rev !== undefined) && canonicalJson(entry.value) !== canonicalJson(own.value)) {
        return `entry ${entry.kind} ${entry.key} does not carry the value of shard ${entry.shard}'s record ${entry.seq}`;
      }
    }
    beforeLast = before;
    lastMoved = record.vector.some((to, shard) => to !== vector[shard]);
    vector = record.vector;
    shardHashes = heads;
    previous = record.hash;
    version = record.version;
    keep?.(record, "feed");
    return undefined;
  };
  const pages = until === undefined ? feedVersionPages(ports, tenantId, version) : [bounded];
  for await (const items of pages) {
    for (const item of items) {
      const reason = await follow(item);
      if (reason) return result({ seq: version + 1, reason, shard: "feed" });
    }
  }
  // The last cut walked is whole too (a run's versions are written together; a bounded walk ends between runs).
  const defect = await cutDefect();
  if (defect) return result({ seq: cut!.last, reason: defect, shard: "feed" });
  if (until !== undefined) {
    return version === until ? result() : result({ seq: version + 1, reason: `feed versions are missing up to ${until}`, shard: "feed" });
  }
  const { Item: head } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }),
  );
  const headVersion = head ? Number(head.version) : 0;
  const headHash = head ? String(head.hash) : genesisHash;
  if (headVersion === version && (!head || headHash === previous)) return result();
  // A sequencing writes its one version (which moves the cut), then moves the head: a run that stopped between leaves
  // the head one behind (the next run moves it forward). The walk reaches the head, not past it: a later walk starts
  // there, and a checkpoint never signs a version the head has not reached. Anything else is not the chain's.
  if (lastMoved && beforeLast && headVersion === beforeLast.seq && headHash === beforeLast.hash) return result(undefined, beforeLast);
  return result({
    seq: version + 1,
    reason: `the feed head is at ${headVersion}: versions are missing or altered at the end`,
    shard: "feed",
  });
}

/**
 * Follows the feed version chain alone from `from` (a version and its hash) to version `to`: each
 * version must follow its predecessor and hash to what it says, and `to` must hash to `toHash`.
 * Undefined when it does, else why not. A version's hash covers the hashes of the shard heads that
 * moved (and, through `prevHash`, the versions that named the others), so a signed point at `to`
 * vouches for every version and record up to `from` once this holds.
 */
export async function followVersions(
  ports: Pick<Ports, "db" | "tables">,
  tenantId: string,
  from: { readonly seq: number; readonly hash: string },
  to: number,
  toHash: string,
): Promise<string | undefined> {
  let version = from.seq;
  let previous = from.hash;
  const pages = to > from.seq ? feedVersionPages(ports, tenantId, from.seq, to) : [];
  for await (const items of pages) {
    for (const item of items) {
      const parsed = feedVersionSchema.safeParse(item);
      if (!parsed.success) return `feed version ${version + 1} is malformed`;
      const record = parsed.data;
      if (record.version !== version + 1) return `expected feed version ${version + 1}, found ${record.version}`;
      if (record.prevHash !== previous) return `feed version ${record.version} does not follow version ${version}`;
      if (versionHash(unhashedVersion(record)) !== record.hash) return `feed version ${record.version} does not hash to what it says`;
      version = record.version;
      previous = record.hash;
    }
  }
  if (version !== to) return `feed versions are missing up to ${to}`;
  return previous === toHash ? undefined : `feed version ${to} is not the one the signed checkpoint names`;
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

/** A device's timeline: its audit records, oldest first (the audit trail keeps every event per subject for the retention; the archive holds what is older). */
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
