/**
 * What this process knows of each tenant's head, and the long polls waiting on it. The
 * ledger reports every commit of this process at once; a poll of the tenant's head (one
 * per tenant, however many PEPs wait) catches commits of other processes. A poll whose
 * version is the newest one seen waits here without reading the store, so a thousand PEPs
 * re-polling after a change cost nothing until the next change; and the entries of this
 * process's latest commits are kept, so the herd woken by a commit is answered without a read.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { feedHeadKey } from "../ledger/feed-version.ts";
import type { CommitNotice } from "../ledger/ledger.ts";
import type { Ports } from "../ports.ts";
import type { FeedEntry } from "./wire.ts";

const headPollMs = 500;
/** How many of a tenant's latest contiguous commits stay in memory. */
const recentCommits = 16;

/** The entries of one commit of this process, from `since` to `version`. */
interface RecentCommit {
  readonly since: number;
  readonly version: number;
  readonly entries: readonly FeedEntry[];
}

interface Waiter {
  readonly since: number;
  readonly wake: (version: number) => void;
}

interface Watches {
  /** The newest version committed per tenant that this process has seen (a lower bound of the head). */
  readonly seen: Map<string, number>;
  readonly tenants: Map<string, { readonly waiters: Set<Waiter>; readonly stop: () => void }>;
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
    watchesByLedger.set(ports.ledger, (watches = created));
  }
  return watches;
}

function remember(watches: Watches, notice: CommitNotice): void {
  const entries = notice.feed.flatMap(({ version, changes }) => changes.map((change) => ({ version, kind: change.kind, key: change.key, value: change.value })));
  // As a read of the audit records would give them back (no undefined fields, plain JSON values).
  const commit: RecentCommit = { since: notice.since, version: notice.version, entries: JSON.parse(JSON.stringify(entries)) as FeedEntry[] };
  const previous = watches.recent.get(notice.tenantId);
  const list = previous?.at(-1)?.version === notice.since ? previous : [];
  list.push(commit);
  if (list.length > recentCommits) list.shift();
  watches.recent.set(notice.tenantId, list);
}

/**
 * The deltas after `since` from this process's latest commits, when they cover every record
 * from `since` to the newest one seen and are at most `limit` records; else undefined.
 */
export function recentDeltas(ports: Ports, tenantId: string, since: number, limit: number): { entries: FeedEntry[]; version: number } | undefined {
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
  watches.seen.set(tenantId, version);
  for (const waiter of watches.tenants.get(tenantId)?.waiters ?? []) if (version > waiter.since) waiter.wake(version);
}

/** The tenant's head as the store has it now (one consistent read), noted as seen. */
export async function headVersion(ports: Ports, tenantId: string): Promise<number> {
  const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }));
  const version = Item ? Number(Item.version) : 0;
  observe(watchesOf(ports), tenantId, version);
  return version;
}

/** The newest version of the tenant this process has seen committed, 0 if none. */
export const seenVersion = (ports: Ports, tenantId: string): number => watchesOf(ports).seen.get(tenantId) ?? 0;

function watch(ports: Ports, tenantId: string, waiter: Waiter): () => void {
  const watches = watchesOf(ports);
  let watcher = watches.tenants.get(tenantId);
  if (!watcher) {
    const poll = setInterval(() => void headVersion(ports, tenantId).catch(() => {}), headPollMs);
    watcher = { waiters: new Set(), stop: () => clearInterval(poll) };
    watches.tenants.set(tenantId, watcher);
  }
  const current = watcher;
  current.waiters.add(waiter);
  return () => {
    current.waiters.delete(waiter);
    if (current.waiters.size === 0 && watches.tenants.get(tenantId) === current) {
      current.stop();
      watches.tenants.delete(tenantId);
    }
  };
}

/**
 * Resolves with the version that passed `since` (this process's commits at once, others'
 * within a head poll), or undefined at the deadline or when the PEP hangs up. A commit seen
 * before the call resolves it at once.
 */
export function changeAfter(ports: Ports, tenantId: string, since: number, waitMs: number, signal?: AbortSignal): Promise<number | undefined> {
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
