/**
 * The feed sequencer: turns what the shards committed into the tenant's scalar feed versions.
 * It reads the feed head and every shard head (the cut: each head a prefix of its shard's chain),
 * and writes the audit records' feed entries between the head's vector and the cut as the next
 * version(s), so versions never fork: one version as a put conditional on its own absence, then
 * the head (a crash between leaves the head one behind; the next run moves it forward), several
 * in one transaction conditional on the head.
 *
 * Instances that commit sequence right after (coalesced per tenant: one run at a time,
 * changes arriving meanwhile wait for the next); a crash between a commit and its sequencing
 * is caught by the next commit of any shard (the cut covers every shard) or by `sequence`
 * called from a backstop. Losing the head race costs a retry, never a change.
 *
 * A key written from two shards (an IP binding moving between devices whose ids hash apart) is
 * ordered by the store revision each change wrote: a cut carries its highest, reaches the change
 * that wrote the store's revision when it lies past the cut, and leaves out (naming it) a change
 * that one an earlier version carried overtook (cut.ts).
 */
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from "@aws-sdk/lib-dynamodb";
import type { TableNames } from "../config.ts";
import { readBindings } from "../device/bindings.ts";
import { bindingValue } from "../feed/wire.ts";
import { auditPartition, auditRecordSchema, auditSortKey, expiry, recordOfItem, unhashed } from "./audit-record.ts";
import { chainHash, genesisHash } from "./chain.ts";
import { batchGetAll, itemKeyText } from "../store/batch-get.ts";
import {
  beyondCut,
  cutEntries,
  cutMismatch,
  entryId,
  leftDefect,
  leftIds,
  leftOutOf,
  storeValued,
  type CutRecord,
  type DerivedEntry,
  type RecordPosition,
  type StoredBinding,
} from "./cut.ts";
import {
  feedHeadKey,
  feedPartition,
  feedSortKey,
  feedVersionSchema,
  storedEntries,
  unhashedVersion,
  versionHash,
  type FeedVersionRecord,
} from "./feed-version.ts";
import { shardCount, shardHeadKey } from "./shard.ts";

/** What one sequencing wrote: the feed moved from `since` to `version`. */
export interface SequencedNotice {
  readonly tenantId: string;
  readonly since: number;
  readonly version: number;
  /**
   * Whether this run announces its versions on the feed's push channel (`noticeIntervalMs`). When it does not, the
   * next announced run's notice, or the backstop's trailing one (catch-up.ts), tells of them.
   */
  readonly announce: boolean;
  readonly vector: readonly number[];
  readonly feed: readonly {
    readonly version: number;
    readonly changes: readonly {
      kind: string;
      key: string;
      value: Record<string, unknown> | null;
      labelsBefore?: Readonly<Record<string, string>>;
    }[];
  }[];
}

export interface FeedHeadState {
  readonly version: number;
  readonly vector: readonly number[];
  readonly hash: string;
  /** The newest version a notice told of, and when (ms; 0: never). Heads written before these say: all of them. */
  readonly noticedVersion: number;
  readonly noticedAt: number;
  /**
   * The `noticedVersion` whose trailing notice a history invocation has taken on (catch-up.ts `announceTrailing`), 0
   * when none has: the others need not wait for it. Head moves leave it (`headUpdate`); the next notice voids it.
   */
  readonly trailingFor: number;
  /** Which invocation took it on (its own token). */
  readonly trailingBy?: string;
}

/**
 * Feed notices go out at most this often per tenant, whichever instances sequence it: each notice is delivered (and
 * billed) to every PEP following the tenant, and a carried one costs a signature. A run with an urgent change
 * (`urgentEntries`: a revocation among them) announces at once; any other run (a re-attach storm, a bulk registration)
 * announces when the last notice is this old, else the next one, or the backstop's trailing one (catch-up.ts), tells of it.
 */
export const noticeIntervalMs = 1_000;

/**
 * Whether a run's entries hold a change PEPs must learn at once: anything but a device's session moving. Every applied
 * fact rewrites its device's view, so an attach or a bearer switch carries the device's entry beside the binding that
 * names it; such a device entry, still active, is the session change a re-attach storm is made of and waits for the
 * interval. Every other device entry is urgent: one no longer active or gone, and an active one changed alone (its
 * labels, which policies and selectors match, its IMSI or EID). So are policies, grants and settings, and a device
 * entry beside a released address (a detach: the release names no device). An address released or moved waits.
 */
export function urgentEntries(
  entries: readonly { readonly kind: string; readonly key: string; readonly value: Record<string, unknown> | null }[],
) {
  const sessions = new Set(
    entries.flatMap((entry) => (entry.kind === "binding" && typeof entry.value?.deviceId === "string" ? [entry.value.deviceId] : [])),
  );
  return entries.some((entry) =>
    entry.kind === "binding" ? false : entry.kind !== "device" || entry.value?.state !== "active" || !sessions.has(entry.key),
  );
}

/** At most this many entries, and about this many bytes, per feed version record (an item holds 400 KB). */
const maxEntriesPerVersion = 200;
const maxBytesPerVersion = 150_000;
/** A transaction carries at most 4 MB: at most this many version records per sequencing. */
const maxVersionsPerRun = 24;

/**
 * The tenant's feed head. `consistent: false` for a reader that only waits for the head to reach a point (an older head
 * only makes it wait longer): half the read units, on an item every committing instance reads.
 */
export async function readFeedHead(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  shards: number,
  consistent = true,
): Promise<FeedHeadState> {
  const { Item } = await db.send(new GetCommand({ TableName: tables.control, Key: feedHeadKey(tenantId), ConsistentRead: consistent }));
  return feedHeadOf(Item, shards);
}

function feedHeadOf(Item: Record<string, unknown> | undefined, shards: number): FeedHeadState {
  if (!Item) {
    return { version: 0, vector: new Array<number>(shards).fill(0), hash: genesisHash, noticedVersion: 0, noticedAt: 0, trailingFor: 0 };
  }
  const vector = Item.vector as number[];
  const version = Number(Item.version);
  return {
    version,
    vector: Array.from({ length: shards }, (_, shard) => Number(vector[shard] ?? 0)),
    hash: String(Item.hash),
    noticedVersion: Item.noticedVersion === undefined ? version : Number(Item.noticedVersion),
    noticedAt: typeof Item.noticedAt === "string" ? Date.parse(Item.noticedAt) || 0 : 0,
    trailingFor: Number(Item.trailingFor ?? 0),
    ...(typeof Item.trailingBy === "string" ? { trailingBy: Item.trailingBy } : {}),
  };
}

/** A shard's head from its item: sequence and hash (the genesis point before its first record). */
const shardHeadOf = (item: Record<string, unknown> | undefined) =>
  item ? { seq: Number(item.seq), hash: String(item.hash) } : { seq: 0, hash: genesisHash };

/** One shard's head item, read consistently. */
export async function readShardHead(db: DynamoDBDocumentClient, tables: TableNames, tenantId: string, shard: number) {
  const { Item } = await db.send(new GetCommand({ TableName: tables.control, Key: shardHeadKey(tenantId, shard), ConsistentRead: true }));
  return shardHeadOf(Item);
}

/**
 * The cut: every shard's head, read one by one (a BatchGetItem), not as one serializable read. A TransactGetItems of the
 * 16 heads is cancelled by any write of any of them in flight (DynamoDB documents it: a transactional read conflicts
 * with a concurrent PutItem, UpdateItem or TransactWriteItems on its items); at 2,000 changes/s, 125 commits/s per head,
 * one almost always is, and the feed would stall exactly when the tenant is busiest. DynamoDB Local runs transactions
 * one at a time and never shows it. Each shard's head is a prefix of its own chain, which is all a cut needs: the only
 * key changed on several shards, an IP binding, is ordered by its store revision (cut.ts), not by when the sequencer
 * read each shard.
 *
 * The heads in `consistent` (all when undefined) are read consistently (a read unit each), the others eventually
 * consistently (half a unit each): such a head may be older than the newest, never newer, and is still a head its
 * shard's committer wrote, so a prefix of the chain (records read up to it are anchored to it as to any head).
 */
async function readCut(db: DynamoDBDocumentClient, tables: TableNames, tenantId: string, shards: number, consistent?: ReadonlySet<number>) {
  const keys = Array.from({ length: shards }, (_, shard) => shardHeadKey(tenantId, shard));
  const readConsistently = (shard: number) => consistent?.has(shard) ?? true;
  const strong = keys.filter((_, shard) => readConsistently(shard));
  const weak = keys.filter((_, shard) => !readConsistently(shard));
  const read = await Promise.all([
    strong.length > 0 ? batchGetAll({ db }, tables.control, strong) : [],
    weak.length > 0 ? batchGetAll({ db }, tables.control, weak, false) : [],
  ]);
  const heads = new Map(read.flat().map((item) => [itemKeyText(item), item]));
  return keys.map((key) => shardHeadOf(heads.get(itemKeyText(key))));
}

/**
 * The shard heads a run that may yield (`mine`) reads consistently; the others it reads eventually consistently, at half
 * the read units (issue 9: the cut was 16 of the ~20 read units an applied fact cost).
 *
 * - Its own shards: the run's purpose is to cover the caller's changes, and a head read there below the caller's own
 *   commit would leave them waiting for another run.
 * - When the tenant is busy (`probe`), every shard up to its highest own one: the designation (the lowest shard with
 *   news) is decided on them, and a stale read hiding another instance's news there would make this instance run
 *   beside the designated one, each losing races on the feed head's one partition (what the designation avoids). The
 *   shards above never decide it (`probeTurn` does not read them either).
 * - When it is not, only its own: another instance committing at the same moment is rare, and a stale read then costs
 *   at most a run raced.
 *
 * A head read stale on another shard only leaves that shard's newest changes to the next run (their committers follow
 * the head and run again: `followHead` in ledger.ts; the feed's backstop covers an idle tenant's). Runs that never yield
 * (the backstop, an explicit run, an urgent change) read every head consistently.
 */
export function consistentShards(commits: readonly OwnCommit[], busy: boolean): ReadonlySet<number> {
  const own = commits.map((commit) => commit.shard);
  if (!busy) return new Set(own);
  return new Set(Array.from({ length: Math.max(0, ...own) + 1 }, (_, shard) => shard));
}

/** The store items of the bindings `derived` carries with revisions: revision, and the record of the change that wrote it. */
async function storedBindings(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  derived: readonly DerivedEntry[],
): Promise<Map<string, StoredBinding>> {
  const keys = derived.filter(({ entry, rev }) => entry.kind === "binding" && rev !== undefined).map(({ entry }) => entry.key);
  if (keys.length === 0) return new Map();
  const items = [...(await readBindings({ db }, tables.identity, tenantId, keys)).values()].map(({ item }) => item);
  return new Map(
    items.map((item) => {
      const by = item.by as { shard?: unknown; seq?: unknown } | undefined;
      const position = by && typeof by.shard === "number" && typeof by.seq === "number" ? { shard: by.shard, seq: by.seq } : undefined;
      return [String(item.address), { rev: Number(item.rev ?? 0), ...(position ? { by: position } : {}) }];
    }),
  );
}

/** Whether the store shows a binding below the revision a record in the cut wrote (a revision stamped by the ledger). */
const behindCut = (derived: readonly DerivedEntry[], store: ReadonlyMap<string, StoredBinding>) =>
  derived.some(({ entry, rev }) => {
    const stored = rev === undefined ? undefined : store.get(entry.key);
    return entry.kind === "binding" && stored?.by !== undefined && stored.rev < rev!;
  });

/** How far before a chain point a named record may lie (a later change that overtook a binding's: a cut or two back). */
const maxChainRead = 10_000;

/**
 * The feed changes of the record at `position`, once the records from it to `until` (a shard head the caller trusts: the
 * verifier's signed checkpoint) are read and found chained, each hashing to what it says and the last
 * to `until.hash`; else why not. A record read by key alone could have been altered where no walk reads it again.
 */
export async function chainedRecordFeed(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  position: RecordPosition,
  until: { readonly seq: number; readonly hash: string },
): Promise<CutRecord["feed"] | string> {
  const where = `shard ${position.shard}'s record ${position.seq}`;
  if (position.seq > until.seq || until.seq - position.seq > maxChainRead) return `${where} is not within reach of a trusted head`;
  const read = await anchoredRecords(db, tables, tenantId, position.shard, position.seq - 1, until, (seq) => seq === position.seq);
  return Array.isArray(read) ? read[0]!.feed : `${where} is not in the chain that ends at the trusted head ${until.seq}`;
}

/** A shard's audit record items from sequence `from` to `to`, in order, page by page (consistent reads). */
async function* recordPages(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  shard: number,
  from: number,
  to: number,
): AsyncGenerator<Record<string, unknown>[]> {
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.send(
      new QueryCommand({
        TableName: tables.audit,
        KeyConditionExpression: "pk = :p AND sk BETWEEN :from AND :to",
        ExpressionAttributeValues: { ":p": auditPartition(tenantId, shard), ":from": auditSortKey(from), ":to": auditSortKey(to) },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    yield page.Items ?? [];
    start = page.LastEvaluatedKey;
  } while (start);
}

type Entry = FeedVersionRecord["entries"][number];
type Records = { seq: number; feed?: { kind: string; key: string; value: Record<string, unknown> | null }[] }[];
/** The records of a shard this process committed itself, when it still holds every one of (after, upTo]. */
export type KnownRecords = (shard: number, after: number, upTo: number) => Records | undefined;

/** How many records an anchored read checks at most (about 27 minutes of a shard at 125 commits/s). */
const maxAnchoredRead = 200_000;

/** A record read from the audit table that is not where its chain says it is: altered, or written there by hand. */
class Unchained {
  readonly why: string;
  constructor(why: string) {
    this.why = why;
  }
}

/**
 * A shard's records (after, until.seq], read page by page and checked to be one chain that ends at `until.hash` (a
 * shard head item's: the control table anchors it, the audit table alone cannot). Each record hashes to what it says
 * and names the one before; so a record altered there, or one added past the head, is refused, whoever hashed it.
 * Returns the records `keep` asks for (sequence, feed changes, hash); `missing` when fewer than that are there (not yet
 * visible, or gone); `Unchained` when they do not chain.
 */
async function anchoredRecords(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  shard: number,
  after: number,
  until: { readonly seq: number; readonly hash: string },
  keep: (seq: number) => boolean = () => true,
): Promise<(Records[number] & { hash: string })[] | "missing" | Unchained> {
  if (after >= until.seq) return [];
  if (until.seq - after > maxAnchoredRead)
    return new Unchained(`shard ${shard}'s records ${after + 1} to ${until.seq} are too many to check`);
  const kept: (Records[number] & { hash: string })[] = [];
  let expected = after + 1;
  let previous: string | undefined;
  for await (const page of recordPages(db, tables, tenantId, shard, after + 1, until.seq)) {
    for (const item of page) {
      const parsed = auditRecordSchema.safeParse(recordOfItem(item));
      if (!parsed.success) return new Unchained(`shard ${shard}'s record ${String(item.seq)} is malformed`);
      const record = parsed.data;
      if (record.seq !== expected) return "missing";
      if ((previous !== undefined && record.prevHash !== previous) || chainHash(record.prevHash, unhashed(record)) !== record.hash) {
        return new Unchained(`shard ${shard}'s record ${record.seq} is not in its chain`);
      }
      if (keep(record.seq)) kept.push({ seq: record.seq, feed: record.feed as never, hash: record.hash });
      previous = record.hash;
      expected++;
    }
  }
  if (expected !== until.seq + 1) return "missing";
  return previous === until.hash ? kept : new Unchained(`shard ${shard}'s records do not end at its head (${until.seq})`);
}

/**
 * `anchoredRecords`, read again briefly while records are missing: a head (or a binding) read key by key may be visible
 * before the other items of its transaction, the record among them, are. Still missing after that, they are gone
 * (expired, deleted), not late.
 */
async function anchoredWhole(...args: Parameters<typeof anchoredRecords>) {
  for (let again = 0; ; again++) {
    const records = await anchoredRecords(...args);
    if (records !== "missing" || again >= 3) return records;
    await new Promise((resolve) => setTimeout(resolve, 5 * 2 ** again));
  }
}

/** The records (after, to.seq] of a shard, every one of them, chained to the shard head `to`; else the feed stops. */
async function readWhole(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  shard: number,
  after: number,
  to: { readonly seq: number; readonly hash: string },
) {
  const records = await anchoredWhole(db, tables, tenantId, shard, after, to);
  // The feed stops here and says why (the ledger logs it, retrying).
  if (records instanceof Unchained) throw new FeedBlocked(records.why);
  if (records === "missing") throw new FeedBlocked(`shard ${shard} lacks records ${after + 1} to ${to.seq}`);
  return records;
}

/**
 * The shard's head item once it is at `seq` or past it: a binding item written by the record at `seq` may be visible
 * before the head item of the same transaction is. Still behind after a few reads, the run stops (and is tried again).
 */
async function shardHeadFrom(db: DynamoDBDocumentClient, tables: TableNames, tenantId: string, shard: number, seq: number) {
  for (let again = 0; ; again++) {
    const head = await readShardHead(db, tables, tenantId, shard);
    if (head.seq >= seq) return head;
    if (again >= 3) throw new Error(`shard ${shard}'s head is not yet at the record ${seq} a binding names`);
    await new Promise((resolve) => setTimeout(resolve, 5 * 2 ** again));
  }
}

/** How far a cut may be reached out to cover bindings' later changes before the run reads the shards again. */
const maxReaches = 4;

/**
 * The cut's entries (cut.ts), from the records between the head's vector and the cut. A binding whose store revision was
 * written past the cut makes the cut reach that record (`beyondCut`); one an earlier version carried is left out and
 * named (`leftOutOf`). Reaching brings other addresses' records in, and may reach on for them, at most `maxReaches`
 * times (past that, the run stops and is tried again).
 */
async function entriesOf(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  head: FeedHeadState,
  cut: readonly { seq: number; hash: string }[],
  known: KnownRecords,
) {
  const reached = cut.map((to) => ({ ...to }));
  /**
   * Each address's store item, read once per run, after the cut. Any revision an earlier version served is at or below
   * it, so reaching the change that wrote it is enough: an address moving on meanwhile does not make the run reach
   * again (it would never end while the address kept moving).
   */
  const store = new Map<string, StoredBinding>();
  for (let reach = 0; ; reach++) {
    const perShard = await Promise.all(
      reached.map(async (to, shard): Promise<(Records[number] & { hash?: string })[]> => {
        if (to.seq <= head.vector[shard]!) return [];
        const remembered = reach === 0 ? known(shard, head.vector[shard]!, to.seq) : undefined;
        return remembered ?? readWhole(db, tables, tenantId, shard, head.vector[shard]!, to);
      }),
    );
    const derived = cutEntries(perShard);
    const unread = derived.filter(({ entry, rev }) => entry.kind === "binding" && rev !== undefined && !store.has(entry.key));
    // Every revision seen here was committed, with its record. A transaction's items become visible one by one (a read
    // sees committed items, not a point in time across them): a binding still below the revision its record in the cut
    // wrote is read again, briefly.
    let read = await storedBindings(db, tables, tenantId, unread);
    for (let again = 0; again < 3 && behindCut(unread, read); again++) {
      await new Promise((resolve) => setTimeout(resolve, 5 * 2 ** again));
      read = await storedBindings(db, tables, tenantId, unread);
    }
    // Still behind: the run stops and is tried again. Serving now would let the next run, reading the same stale item,
    // serve the change this one overtook after it.
    if (behindCut(unread, read)) throw new Error("a binding's store item is not yet at the revision its record wrote");
    for (const { entry } of unread) store.set(entry.key, read.get(entry.key) ?? { rev: 0 });
    const further = beyondCut(
      derived,
      store,
      reached.map((to) => to.seq),
    );
    if (further.size > 0) {
      // Reaching on and on (addresses whose later changes each bring in another's): the run stops and is tried again
      // rather than serve a change a later one, served before, overtook.
      if (reach === maxReaches) throw new Error(`the cut reached ${maxReaches} times for bindings' later changes`);
      // To the shard's head item as it is now (at or past the change), so the records read are anchored there too.
      for (const [shard, seq] of further) reached[shard] = await shardHeadFrom(db, tables, tenantId, shard, seq);
      continue;
    }
    const left = leftOutOf(derived, store, head.vector);
    const omitted = leftIds(left);
    const entries: Entry[] = [];
    for (const one of derived) {
      if (omitted.has(entryId(one.entry))) continue;
      if (storeValued(one)) {
        const { entry } = one;
        const Item = (await readBindings({ db }, tables.identity, tenantId, [entry.key])).get(entry.key)?.item;
        entries.push({ ...entry, value: Item?.deviceId ? bindingValue(Item) : null });
      } else entries.push(one.entry);
    }
    return { entries, left, cut: reached };
  }
}

function chunks(entries: readonly Entry[]): Entry[][] {
  const result: Entry[][] = [[]];
  let bytes = 0;
  for (const entry of entries) {
    const size = JSON.stringify(entry).length;
    if (result.at(-1)!.length >= maxEntriesPerVersion || (bytes + size > maxBytesPerVersion && result.at(-1)!.length > 0)) {
      result.push([]);
      bytes = 0;
    }
    result.at(-1)!.push(entry);
    bytes += size;
  }
  return result;
}

/**
 * The update that moves the feed head to `record` (version, vector, hash); each caller adds its condition (`#version`
 * names the head's version). What notices told of is written only by a move that announces (`noticedAt` given): a move never writes back the notice fields as it read them, so one computed from an older read (a run that
 * read the head before a trailing notice was taken on or marked told, catch-up.ts) cannot undo them. A helper review
 * found the whole-item put doing so: a finished claim revived, and the run's version then never told.
 */
function headUpdate(tenantId: string, record: FeedVersionRecord, updatedAt: string, head: FeedHeadState, noticedAt?: string) {
  return {
    Key: feedHeadKey(tenantId),
    UpdateExpression:
      "SET #version = :to, #vector = :vector, #hash = :hash, updatedAt = :updatedAt, " +
      (noticedAt === undefined
        ? // A head written before notices were recorded reads as told up to its version.
          "noticedVersion = if_not_exists(noticedVersion, :told)"
        : "noticedVersion = :to, noticedAt = :noticedAt"),
    ExpressionAttributeNames: { "#version": "version", "#vector": "vector", "#hash": "hash" },
    ExpressionAttributeValues: {
      ":to": record.version,
      ":vector": record.vector,
      ":hash": record.hash,
      ":updatedAt": updatedAt,
      ...(noticedAt === undefined ? { ":told": head.noticedVersion } : { ":noticedAt": noticedAt }),
    },
  };
}

/**
 * Moves the feed head to `record` unless it is there or past it already. A one-version run writes its
 * version, then the head: between the two, readers still see the version before (deltas stop at the head),
 * and a run that stopped there (crashed, timed out) leaves the head one behind until the next run moves it.
 */
async function moveHead(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  record: FeedVersionRecord,
  time: string,
  head: FeedHeadState,
  noticedAt?: string,
) {
  try {
    await db.send(
      new UpdateCommand({
        TableName: tables.control,
        ...headUpdate(tenantId, record, time, head, noticedAt),
        ConditionExpression: "attribute_not_exists(pk) OR #version < :to",
      }),
    );
  } catch (error) {
    // Another run moved it there (or past) first.
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/** A version past the head that no sequencing from the head would have written (see `pendingDefect`). */
export class FeedBlocked extends Error {
  override readonly name = "FeedBlocked";
}

const readVersion = async (db: DynamoDBDocumentClient, tables: TableNames, tenantId: string, version: number) =>
  (
    await db.send(
      new GetCommand({ TableName: tables.audit, Key: { pk: feedPartition(tenantId), sk: feedSortKey(version) }, ConsistentRead: true }),
    )
  ).Item;

/**
 * Why a version found one past the head is not what a sequencing from the head would have written (its entries are
 * read again from the shard records it covers), or undefined when it is. A version only a sequencer could have
 * written is adopted; another (written by hand into the audit table) is not served.
 */
async function pendingDefect(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  head: FeedHeadState,
  item: Record<string, unknown>,
): Promise<string | undefined> {
  const parsed = feedVersionSchema.safeParse(item);
  if (!parsed.success) return "malformed";
  const record = parsed.data;
  if (record.version !== head.version + 1 || record.prevHash !== head.hash) return "does not follow the head";
  if (versionHash(unhashedVersion(record)) !== record.hash) return "hash does not match its content";
  const { vector } = record;
  if (vector.length !== head.vector.length || vector.some((to, shard) => to < head.vector[shard]!)) return "goes back";
  if (vector.every((to, shard) => to === head.vector[shard])) return "moves no shard";
  const left = record.left ?? [];
  // The records it covers, and those it names as overtaking a binding's change (each at or before the head's vector,
  // `leftDefect`), read per shard in one pass up to the shard's head item: one chain ending there (`anchoredRecords`).
  // Written into the audit table alone, a record or a version does not get past that.
  const named = new Map<number, Set<number>>();
  for (const { by } of left) named.set(by.shard, (named.get(by.shard) ?? new Set()).add(by.seq));
  const read = await Promise.all(
    vector.map(async (to, shard) => {
      const from = head.vector[shard]!;
      const seqs = named.get(shard) ?? new Set<number>();
      if (to === from && seqs.size === 0) return [];
      const anchor = await readShardHead(db, tables, tenantId, shard);
      if (to > anchor.seq) return `covers records of shard ${shard} past its head`;
      const after = Math.max(0, Math.min(from, ...[...seqs].map((seq) => seq - 1)));
      const records = await anchoredWhole(db, tables, tenantId, shard, after, anchor, (seq) => (seq > from ? seq <= to : seqs.has(seq)));
      if (records === "missing") return `covers records shard ${shard} does not hold`;
      return records instanceof Unchained ? records.why : records;
    }),
  );
  const perShard: Records[] = [];
  const feeds = new Map<string, CutRecord["feed"]>();
  for (const [shard, records] of read.entries()) {
    if (typeof records === "string") return records;
    const from = head.vector[shard]!;
    for (const one of records) if (one.seq <= from) feeds.set(`${shard}|${one.seq}`, one.feed as CutRecord["feed"]);
    const covered = records.filter((one) => one.seq > from);
    const heads = record.heads?.[String(shard)] ?? record.shardHashes?.[shard];
    if (covered.length > 0 && heads !== covered.at(-1)!.hash) return `names another head for shard ${shard}`;
    perShard.push(covered);
  }
  const derived = cutEntries(perShard);
  const leftReason = leftDefect(derived, left, head.vector, ({ shard, seq }) => feeds.get(`${shard}|${seq}`));
  if (leftReason) return `its entries are not the shard records': it ${leftReason}`;
  // Nor leave out less than a sequencing would have: a binding change the store shows overtaken by a change an earlier
  // version carried. The store holds that revision still, so it held it when the version was written (any write since
  // is recorded past the head's vector), and the sequencer then left the change out.
  const omitted = leftIds(left);
  const kept = leftOutOf(derived, await storedBindings(db, tables, tenantId, derived), head.vector).find(
    ({ key }) => !omitted.has(entryId({ kind: "binding", key })),
  );
  if (kept) {
    return `not its records' entries: it serves binding ${kept.key} at revision ${kept.rev}, overtaken by shard ${kept.by.shard} record ${kept.by.seq}`;
  }
  const mismatch = cutMismatch(derived, record.entries, omitted);
  return mismatch ? `its entries are not the shard records': it ${mismatch}` : undefined;
}

/** What a head move from `since` to the last of `records` announces (the writer's notice, or an adopter's of it). */
const noticeOf = (tenantId: string, since: number, records: readonly FeedVersionRecord[], announce: boolean): SequencedNotice => ({
  tenantId,
  since,
  announce,
  version: records.at(-1)!.version,
  vector: records.at(-1)!.vector,
  feed: records.map((record) => ({
    version: record.version,
    changes: record.entries.map(({ kind, key, value, labelsBefore }) => ({ kind, key, value, ...(labelsBefore ? { labelsBefore } : {}) })),
  })),
});

/**
 * Moves the head to the version after `head` when that version is written (once it is what a sequencing would have
 * written), and returns what the move announces; undefined when there is none. The run that wrote the version stopped
 * before moving the head (throttled, timed out, its instance gone), so it announced nothing: the mover must, or the
 * waiting PEPs learn of the version only from their next head poll (seconds on the push channel).
 */
async function adoptPending(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  head: FeedHeadState,
): Promise<SequencedNotice | undefined> {
  const item = await readVersion(db, tables, tenantId, head.version + 1);
  if (!item) return undefined;
  const defect = await pendingDefect(db, tables, tenantId, head, item);
  // Not served: the feed stops here (fails closed) and says why; the caller backs off as from a store failure.
  if (defect) throw new FeedBlocked(`version ${head.version + 1} past the head: not the sequencer's (${defect})`);
  const record = feedVersionSchema.parse(item) as FeedVersionRecord;
  // Its run stopped before it could announce: the mover does, at once.
  const notice = noticeOf(tenantId, head.version, [record], true);
  try {
    await moveHead(db, tables, tenantId, record, record.time, head, new Date().toISOString());
  } catch (error) {
    // As a writer's own head move (sequenceOnce): it may have landed, its answer lost.
    throw new SequencingInDoubt(notice, record.hash, error);
  }
  return notice;
}

/**
 * After a lost race for the version after `head`: when that version is written but the head is still behind it,
 * moves the head to it and returns what that announces. Usually the winner has moved the head already: one read of
 * it, and no write (a refused write is billed).
 */
async function rollForward(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  head: FeedHeadState,
): Promise<SequencedNotice | undefined> {
  if ((await readFeedHead(db, tables, tenantId, head.vector.length)).version > head.version) return undefined;
  return adoptPending(db, tables, tenantId, head);
}

/**
 * Moves a head left one version behind (a sequencing that stopped between writing its version and moving the head)
 * to that version, as the next sequencing would; for a tenant with no change since, nothing else would. Returns what
 * the move announces, undefined when the head was not behind.
 */
export async function settleHead(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  shards = shardCount,
): Promise<SequencedNotice | undefined> {
  return adoptPending(db, tables, tenantId, await readFeedHead(db, tables, tenantId, shards));
}

/**
 * A run that lost the race for the version after the head (the caller reads again); `adopted` when the winner had
 * stopped before moving the head and this run moved it (the caller announces that version, as the winner would have).
 */
export type Raced = "raced" | { readonly raced: true; readonly adopted: SequencedNotice };

/** A change the caller committed and waits to see in the feed: its records `from` to `seq` of `shard`. */
export interface OwnCommit {
  readonly shard: number;
  readonly from: number;
  readonly seq: number;
}

/** Whether `commit` holds its shard's next position after `vector` (the change a run designates, if its shard is the lowest with news). */
export const holdsNext = (commit: OwnCommit, vector: readonly number[]) =>
  commit.from <= vector[commit.shard]! + 1 && commit.seq > vector[commit.shard]!;

/** A feed head as far as a follower needs it: its version and its vector of shard sequences. */
export interface HeadPoint {
  readonly version: number;
  readonly vector: readonly number[];
}

/** A run that left the sequencing to another instance (see `sequenceOnce`), with the head it read. */
export interface Yielded {
  readonly yielded: FeedHeadState;
}

/**
 * Whether the caller may be the instance `sequenceOnce` designates, from eventually consistent reads of the feed head
 * and of the shard heads below the caller's highest shard with a change (one BatchGetItem, half a read unit an item):
 * `Yielded` when it is not, or when the head covers its changes already; undefined when it may be (the run then reads
 * the head and the cut consistently and decides again). An instance that has seen the tenant busy asks this after its
 * commits (ledger.ts `busyTenants`): at 2,000 changes/s nearly every committing instance, about 2,000 times a second,
 * where each read the head and the 16 shard heads consistently (17 read units; ~34,000 a second, 2,000 of them on the
 * feed head item alone, which takes at most 3,000). Now about 4 on average, half a unit on the feed head. The designation needs no shard above the caller's: the lowest shard with news is at or below
 * the caller's highest, where the caller's own change is news. A stale read errs either way and costs little: a head
 * or cut read from before a move makes an instance think it may be designated (the consistent reads then say), or
 * think it is not when it is (its next read of the head, newer, makes it ask again: `followHead` in ledger.ts); a
 * head read never shows more than was written, so a change it covers is covered. `newest`: the newest head the caller
 * has seen (its own moves, its reads): a probe that reads an older one (another replica, behind) judges by `newest`
 * instead, so a designated instance that saw the head move does not read its way back to before the move.
 */
async function probeTurn(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  shards: number,
  mine: () => readonly OwnCommit[],
  newest?: HeadPoint,
): Promise<Yielded | undefined> {
  const commits = mine();
  const highest = Math.max(0, ...commits.map((commit) => commit.shard));
  const keys = [feedHeadKey(tenantId), ...Array.from({ length: highest }, (_, shard) => shardHeadKey(tenantId, shard))];
  const items = new Map((await batchGetAll({ db }, tables.control, keys, false)).map((item) => [itemKeyText(item), item]));
  const read = feedHeadOf(items.get(itemKeyText(keys[0]!)), shards);
  const head = newest && newest.version > read.version ? { ...read, version: newest.version, vector: [...newest.vector] } : read;
  // What each shard holds as far as these reads show: its head item, or the caller's own changes on it.
  const reached = (shard: number) =>
    Math.max(
      shard < highest ? shardHeadOf(items.get(itemKeyText(keys[shard + 1]!))).seq : 0,
      ...commits.filter((commit) => commit.shard === shard).map((commit) => commit.seq),
    );
  const oldest = Array.from({ length: highest + 1 }, (_, shard) => shard).find((shard) => reached(shard) > head.vector[shard]!);
  if (oldest === undefined) return { yielded: head };
  return commits.some((commit) => commit.shard === oldest && holdsNext(commit, head.vector)) ? undefined : { yielded: head };
}

/**
 * One sequencing run: the versions after the head up to the current cut, or undefined when
 * nothing is new, or `Raced` when another instance moved the head first (the caller reads again).
 *
 * `mine`: the caller's changes still waiting for a version, asked before the head and the cut are read (which shard
 * heads to read consistently: `consistentShards`) and again after (a change that landed meanwhile counts); given, the run
 * goes on only for the one instance it designates, and otherwise stops before its reads of records and bindings and
 * its writes (`Yielded`). The designated instance holds the oldest change the feed does not carry yet on the lowest
 * shard with news: it is waiting for it (that change is not in the feed), and a change committed later does not move
 * the designation, only a move of the head does (then the next oldest change's instance is designated). Its run covers
 * every shard. So at a tenant's busiest one instance at a time reads records and bindings and writes the next version,
 * where every committing instance did (each lost race a refused write on the feed's one partition). A caller whose
 * changes the head covers already yields too. Without `mine` (the feed's backstop, an explicit run, an urgent change,
 * a caller that waited long enough) a run never yields. `probe`: the caller lately found another instance designated
 * (the tenant is busy): it asks `probeTurn` first (with the newest head it has seen), and reads the head and the cut
 * consistently only if it may be designated.
 */
export async function sequenceOnce(
  db: DynamoDBDocumentClient,
  tables: TableNames,
  tenantId: string,
  shards: number,
  now: Date,
  known: KnownRecords = () => undefined,
  retentionSeconds?: number,
  mine?: () => readonly OwnCommit[],
  probe?: { readonly newest?: HeadPoint },
): Promise<SequencedNotice | Raced | Yielded | undefined> {
  if (mine && probe) {
    const probed = await probeTurn(db, tables, tenantId, shards, mine, probe.newest);
    if (probed) return probed;
  }
  const consistent = mine ? consistentShards(mine(), probe !== undefined) : undefined;
  // Read side by side (one round trip, not two): the head is only trusted as far as the write's condition on it.
  const [head, read] = await Promise.all([readFeedHead(db, tables, tenantId, shards), readCut(db, tables, tenantId, shards, consistent)]);
  // A head read eventually consistently may be older than what the feed covers already: nothing new there, not a race.
  // Its hash is never used (a shard the run does not move is neither read nor named).
  const cut = read.map((to, shard) =>
    consistent && !consistent.has(shard) && to.seq < head.vector[shard]! ? { seq: head.vector[shard]!, hash: "" } : to,
  );
  if (cut.every((to, shard) => to.seq <= head.vector[shard]!)) return undefined;
  // Another instance sequenced past this cut on some shard after it was read: read again.
  if (cut.some((to, shard) => to.seq < head.vector[shard]!)) return "raced";
  if (mine) {
    // Asked after the reads: a change of the caller's that landed meanwhile counts as its own.
    const oldest = cut.findIndex((to, shard) => to.seq > head.vector[shard]!);
    const designated = mine().some((commit) => commit.shard === oldest && holdsNext(commit, head.vector));
    if (!designated) return { yielded: head };
  }
  const derived = await entriesOf(db, tables, tenantId, head, cut, known);
  const { entries, left } = derived;
  const parts = chunks(entries);
  if (parts.length > maxVersionsPerRun) throw new Error(`feed backlog of ${entries.length} entries exceeds one sequencing transaction`);
  const vector = derived.cut.map((to) => to.seq);
  // Only the heads that moved (a version with every shard's hash weighed 1.8 KB, 2 write units, doubled in the
  // transaction); the versions after the first of a run share its cut and name none, nor what it leaves out.
  const moved = Object.fromEntries(derived.cut.flatMap((to, shard) => (to.seq === head.vector[shard] ? [] : [[String(shard), to.hash]])));
  const time = now.toISOString();
  const records: FeedVersionRecord[] = [];
  let prevHash = head.hash;
  parts.forEach((part, index) => {
    const heads = index === 0 ? moved : {};
    const unhashed = {
      version: head.version + index + 1,
      tenantId,
      time,
      vector,
      heads,
      entries: part,
      ...(index === 0 && left.length > 0 ? { left } : {}),
      prevHash,
    };
    const record = { ...unhashed, hash: versionHash(unhashed) };
    records.push(record);
    prevHash = record.hash;
  });
  const last = records.at(-1)!;
  const item = (record: FeedVersionRecord) => ({
    pk: feedPartition(tenantId),
    sk: feedSortKey(record.version),
    ...record,
    entries: storedEntries(record.entries),
    // Kept as long as the audit records it chains over, and archived with them (audit/archive.ts).
    ...(retentionSeconds ? { expiresAt: expiry(time, retentionSeconds) } : {}),
  });
  const urgent = urgentEntries(records.flatMap((record) => record.entries));
  const announce = urgent || now.getTime() - head.noticedAt >= noticeIntervalMs;
  const notice = noticeOf(tenantId, head.version, records, announce);
  try {
    if (records.length === 1) {
      // One version (every run but a backlog's): its conditional put alone decides the version, no transaction
      // (which bills each item twice); the head follows it and is moved forward by whoever finds it behind.
      try {
        await db.send(new PutCommand({ TableName: tables.audit, Item: item(last), ConditionExpression: "attribute_not_exists(pk)" }));
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        // Written already: by another run, or by this one (its answer was lost and the SDK sent the put again).
        if ((await readVersion(db, tables, tenantId, last.version))?.hash !== last.hash) throw error;
      }
      await moveHead(db, tables, tenantId, last, time, head, announce ? time : undefined);
    } else {
      const headMove = headUpdate(tenantId, last, time, head, announce ? time : undefined);
      await db.send(
        new TransactWriteCommand({
          TransactItems: [
            ...records.map((record) => ({
              Put: { TableName: tables.audit, Item: item(record), ConditionExpression: "attribute_not_exists(pk)" },
            })),
            {
              Update: {
                TableName: tables.control,
                ...headMove,
                ConditionExpression: head.version === 0 ? "attribute_not_exists(pk)" : "#version = :from",
                ExpressionAttributeValues: {
                  ...headMove.ExpressionAttributeValues,
                  ...(head.version === 0 ? {} : { ":from": head.version }),
                },
              },
            },
          ],
        }),
      );
    }
  } catch (error) {
    if (error instanceof TransactionCanceledException || error instanceof ConditionalCheckFailedException) {
      const adopted = await rollForward(db, tables, tenantId, head);
      return adopted ? { raced: true, adopted } : "raced";
    }
    // Throttled, timed out, or answered with an error after the write landed (the head moved, the answer lost).
    throw new SequencingInDoubt(notice, last.hash, error);
  }
  return notice;
}

/**
 * A sequencing run's writes failed with an error that does not say they were refused: they may have landed (the
 * head moved, its answer lost), and then nobody else announces the versions (the next run finds nothing new). The
 * caller keeps `notice` and, at its next run, announces it if the head shows it landed (`landed`).
 */
export class SequencingInDoubt extends Error {
  override readonly name = "SequencingInDoubt";
  readonly notice: SequencedNotice;
  readonly hash: string;
  constructor(notice: SequencedNotice, hash: string, cause: unknown) {
    super(`sequencing of versions up to ${notice.version} failed: ${String((cause as Error)?.name ?? cause)}`, { cause });
    this.notice = notice;
    this.hash = hash;
  }
}

/** True when the head has reached the versions of `doubt` and the last of them is the one that run wrote. */
export async function landed(db: DynamoDBDocumentClient, tables: TableNames, doubt: SequencingInDoubt, shards = shardCount) {
  const { tenantId, version } = doubt.notice;
  const head = await readFeedHead(db, tables, tenantId, shards);
  if (head.version < version) return false;
  const hash = head.version === version ? head.hash : (await readVersion(db, tables, tenantId, version))?.hash;
  return hash === doubt.hash;
}
