/**
 * What this process knows of each tenant's head, and the long polls waiting on it. The
 * ledger reports every commit of this process at once; other processes' commits arrive on
 * the feed's push channel (`ports.feedNotifier`, one subscription per tenant however many
 * PEPs wait), and a poll of the tenant's head catches whatever the channel missed (every
 * 500 ms without a channel, every 5 s with one). A poll whose
 * version is the newest one seen waits here without reading the store, so a thousand PEPs
 * re-polling after a change cost nothing until the next change; and the entries of this
 * process's latest commits are kept, so the herd woken by a commit is answered without a read.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { feedHeadPollMs } from "../config.ts";
import { feedHeadKey } from "../ledger/feed-version.ts";
import type { CommitNotice } from "../ledger/ledger.ts";
import type { Ports } from "../ports.ts";
import type { NoticeSealer } from "./notifier.ts";
import { servedEntries, type ReadEntry } from "./read-entry.ts";

const headPollMs = 500;
/** With a push channel the head poll is only the fallback for lost notices. */
const fallbackHeadPollMs = 5_000;
/** `SIMROOT_FEED_HEAD_POLL_MS` overrides either (tests prove wake-ups come from the channel alone). */
const headPollOverride = feedHeadPollMs();
/** A subscribed tenant nobody waits on stays subscribed this long (PEPs re-poll right after each answer). */
const lingerMs = 30_000;
/** Tenants whose seen head and latest commits are remembered (least recently changed forgotten first). */
export const maxRememberedTenants = 10_000;
/** How many of a tenant's latest contiguous commits stay in memory. */
const recentCommits = 16;

/** The entries of one commit of this process, from `since` to `version`. */
interface RecentCommit {
  readonly since: number;
  readonly version: number;
  readonly entries: readonly ReadEntry[];
}

interface Waiter {
  readonly since: number;
  readonly wake: (version: number) => void;
}

interface Watcher {
  readonly waiters: Set<Waiter>;
  readonly stop: () => void;
  /** Set while nobody waits: the watcher stops when it fires. */
  linger?: NodeJS.Timeout;
}

interface Watches {
  /** The newest version committed per tenant that this process has seen (a lower bound of the head). */
  readonly seen: Map<string, number>;
  readonly tenants: Map<string, Watcher>;
  /** Per tenant, this process's latest commits, contiguous and in order. */
  readonly recent: Map<string, RecentCommit[]>;
}

const watchesByLedger = new WeakMap<object, Watches>();

function watchesOf(ports: Ports): Watches {
  let watches = watchesByLedger.get(ports.ledger);
  if (!watches) {
    const created: Watches = { seen: new Map(), tenants: new Map(), recent: new Map() };
    ports.ledger.onCommit((notice) => {
      remember(created, notice);
      observe(created, notice.tenantId, notice.version);
    });
    // Instances that publish but never serve the feed register through publishCommits.
    publishCommits(ports);
    watchesByLedger.set(ports.ledger, (watches = created));
  }
  return watches;
}

/** A sequencing's feed entries, as a read of its version records gives them. */
export const commitEntries = (notice: CommitNotice): ReadEntry[] =>
  notice.feed.flatMap(({ version, changes }) =>
    changes.map((change) => ({
      version,
      kind: change.kind,
      key: change.key,
      value: change.value,
      ...(change.labelsBefore ? { labelsBefore: change.labelsBefore } : {}),
    })),
  ) as ReadEntry[];

function remember(watches: Watches, notice: CommitNotice): void {
  const entries = commitEntries(notice);
  // As a read of the audit records would give them back (no undefined fields, plain JSON values).
  const commit: RecentCommit = {
    since: notice.since,
    version: notice.version,
    entries: JSON.parse(JSON.stringify(entries)) as ReadEntry[],
  };
  const previous = watches.recent.get(notice.tenantId);
  const list = previous?.at(-1)?.version === notice.since ? previous : [];
  list.push(commit);
  if (list.length > recentCommits) list.shift();
  bounded(watches.recent, notice.tenantId, list);
}

/** Sets `key` as the most recent entry, forgetting the least recent past `maxRememberedTenants`. */
function bounded<Value>(map: Map<string, Value>, key: string, value: Value): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > maxRememberedTenants) map.delete(map.keys().next().value as string);
}

const publishing = new WeakSet<object>();
/**
 * Publishes every commit of this process's ledger on the feed's push channel (once per
 * ledger, whoever calls it first): PEPs and other instances learn of it without polling. With `seal` (the feed's
 * signer, core feed.ts `noticeSealer`), each notice carries its change as a signed delta, so that a PEP following the
 * tenant applies it without a request. Entry points call this with their sealer before anything commits.
 */
export function publishCommits(ports: Pick<Ports, "feedNotifier" | "ledger">, seal?: NoticeSealer): void {
  const notifier = ports.feedNotifier;
  if (!notifier || publishing.has(ports.ledger)) return;
  publishing.add(ports.ledger);
  ports.ledger.onCommit((notice) => {
    // No urgent change, within a second of the tenant's last notice: the next notice tells of it (sequencer.ts
    // `noticeIntervalMs`), or the backstop's trailing one.
    if (!notice.announce) return;
    void notifier.publish(
      { tenantId: notice.tenantId, version: notice.version, since: notice.since, entries: servedEntries(commitEntries(notice)) },
      seal,
    );
  });
}

/**
 * The deltas after `since` from this process's latest commits, when they cover every record
 * from `since` to the newest one seen and are at most `limit` records; else undefined.
 */
export function recentDeltas(
  ports: Ports,
  tenantId: string,
  since: number,
  limit: number,
): { entries: ReadEntry[]; version: number } | undefined {
  const watches = watchesOf(ports);
  const list = watches.recent.get(tenantId);
  const start = list?.findIndex((commit) => commit.since === since) ?? -1;
  if (!list || start < 0) return undefined;
  const version = list.at(-1)!.version;
  if (version < (watches.seen.get(tenantId) ?? 0) || version - since > limit) return undefined;
  return { entries: list.slice(start).flatMap((commit) => commit.entries), version };
}

function observe(watches: Watches, tenantId: string, version: number): void {
  if (version <= (watches.seen.get(tenantId) ?? 0)) return;
  bounded(watches.seen, tenantId, version);
  for (const waiter of watches.tenants.get(tenantId)?.waiters ?? []) if (version > waiter.since) waiter.wake(version);
}

/** The tenant's head as the store has it now (one consistent read), noted as seen. */
export async function headVersion(ports: Ports, tenantId: string): Promise<number> {
  return (await readHead(ports, tenantId)).version;
}

/** A feed head as read: its version (0 before the first) and that version's hash (anchor.ts checks versions against it). */
export interface HeadRead {
  readonly version: number;
  readonly hash: string | undefined;
}

/** The tenant's head item as the store has it now (one consistent read), its version noted as seen. */
export async function readHead(ports: Ports, tenantId: string): Promise<HeadRead> {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }),
  );
  const version = Item ? Number(Item.version) : 0;
  observe(watchesOf(ports), tenantId, version);
  return { version, hash: typeof Item?.hash === "string" ? Item.hash : undefined };
}

/** The newest version of the tenant this process has seen committed, 0 if none. */
export const seenVersion = (ports: Ports, tenantId: string): number => watchesOf(ports).seen.get(tenantId) ?? 0;

/**
 * Reads the tenant's head on demand, one read at a time: asked again while a read is in flight, it reads once more
 * after it (a burst of notices, from commits or forged, costs two reads, not one each). A failed read is tried again
 * after 100 ms, twice, before the fallback poll is left to catch up.
 */
function headReader(ports: Ports, tenantId: string): () => void {
  let reading = false;
  let again = false;
  const read = (failures: number) => {
    reading = true;
    headVersion(ports, tenantId).then(
      () => done(0),
      () => (failures < 2 ? setTimeout(() => read(failures + 1), 100).unref() : done(0)),
    );
  };
  const done = (failures: number) => {
    reading = false;
    if (again) {
      again = false;
      read(failures);
    }
  };
  return () => {
    if (reading) again = true;
    else read(0);
  };
}

function watch(ports: Ports, tenantId: string, waiter: Waiter): () => void {
  const watches = watchesOf(ports);
  let watcher = watches.tenants.get(tenantId);
  if (!watcher) {
    const subscribe = ports.feedNotifier?.subscribe;
    const readHead = headReader(ports, tenantId);
    const poll = setInterval(readHead, headPollOverride ?? (subscribe ? fallbackHeadPollMs : headPollMs));
    // A notice is a hint, not a fact: whoever can publish on the channel could name a version past the head (one
    // written past it into the audit table by hand, say). A notice of something newer, or an interrupted channel
    // (which may have lost some), makes this process read the head: not per waiting PEP, nor per notice.
    const unsubscribe = subscribe?.(tenantId, (notice) => {
      if (!notice || notice.version > (watches.seen.get(tenantId) ?? 0)) readHead();
    });
    watcher = {
      waiters: new Set(),
      stop: () => {
        clearInterval(poll);
        unsubscribe?.();
      },
    };
    watches.tenants.set(tenantId, watcher);
  }
  const current = watcher;
  clearTimeout(current.linger);
  current.linger = undefined;
  current.waiters.add(waiter);
  return () => {
    current.waiters.delete(waiter);
    if (current.waiters.size > 0 || watches.tenants.get(tenantId) !== current) return;
    const stop = () => {
      current.stop();
      if (watches.tenants.get(tenantId) === current) watches.tenants.delete(tenantId);
    };
    if (!ports.feedNotifier?.subscribe) return stop();
    current.linger = setTimeout(() => current.waiters.size === 0 && stop(), lingerMs);
    current.linger.unref();
  };
}

/**
 * Resolves with the version that passed `since` (this process's commits at once, others'
 * within a head poll), or undefined at the deadline or when the PEP hangs up. A commit seen
 * before the call resolves it at once.
 */
export function changeAfter(
  ports: Ports,
  tenantId: string,
  since: number,
  waitMs: number,
  signal?: AbortSignal,
): Promise<number | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (version?: number) => {
      if (done) return;
      done = true;
      unwatch();
      clearTimeout(deadline);
      signal?.removeEventListener("abort", abandon);
      resolve(version);
    };
    const abandon = () => finish();
    const unwatch = watch(ports, tenantId, { since, wake: finish });
    const deadline = setTimeout(abandon, waitMs);
    signal?.addEventListener("abort", abandon);
    const seen = seenVersion(ports, tenantId);
    if (seen > since) finish(seen);
    else if (signal?.aborted) finish();
  });
}
