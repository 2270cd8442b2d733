/**
 * The ledger: the one path by which state changes commit. Each change's writes and its
 * hash-chained audit records (which carry its change-feed entries) go into one DynamoDB
 * transaction, together with a conditional update of the head of the change's ledger shard
 * (sequence and last hash), so no shard's chain can fork or skip. A tenant has `shardCount`
 * shards (a device's changes on the one its id hashes to), so no single item takes every
 * change of a tenant; the feed sequencer (sequencer.ts) turns the shards' commits into the
 * tenant's scalar feed versions.
 *
 * Changes of one shard that arrive while a transaction is in flight are coalesced into the
 * next one (up to DynamoDB's 100 actions): independent changes share a transaction, and so
 * a round trip, as a database's group commit does. A change whose own condition fails is
 * rejected alone; the others are retried without it, with capped, jittered backoff, for as
 * long as the head is contended (contention delays a change, it never fails it). A retry after
 * an ambiguous failure (the store may have committed) resends the same transaction with the
 * same ClientRequestToken, which DynamoDB answers idempotently.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { TransactWriteCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { auditRetentionDays, type TableNames } from "../config.ts";
import { SimrootError } from "../error.ts";
import type { MetricsSink } from "../platform/metrics.ts";
import { Lru } from "../store/lru.ts";
import { busy, type TransactItem } from "../store/transaction.ts";
import { auditItem } from "./audit-record.ts";
import type { Change, Committed, FeedChange } from "./change.ts";
import {
  FeedBlocked,
  holdsNext,
  landed,
  readFeedHead,
  readShardHead,
  SequencingInDoubt,
  sequenceOnce,
  urgentEntries,
  type HeadPoint,
  type OwnCommit,
  type SequencedNotice,
} from "./sequencer.ts";
import { shardCount, shardHeadKey, shardOfSubject } from "./shard.ts";

const maxActions = 100;
/** Contention never fails a change: it waits, up to this long, for its turn at the shard head. */
const contentionBudgetMs = 60_000;
/**
 * A store that throttles a change (over its capacity: the SDK's own retries given up) fails it after this long: the API
 * answers 503 with Retry-After well inside its function's 29 s (the applier tries a fact again in its place,
 * `applyInPlace`). Held for the contention budget, a request outlived its invocation, which Lambda ended, and the
 * gateway answered with neither (60 s seen).
 */
const throttleBudgetMs = 8_000;
/** When the changes made within it must be committed by (epoch ms), set by an entry point with a deadline of its own. */
const changeDeadline = new AsyncLocalStorage<number | undefined>();

/**
 * Runs `body` with a deadline for the changes it commits: one still waiting for its turn (contention) or retried
 * (throttling) at `deadline` fails there, as past its budget. The API sets one that leaves it time to answer 503 with
 * Retry-After inside its function's time (`timeouts.apiChangeSeconds`); `undefined` clears an inherited one.
 */
export function withChangeDeadline<T>(deadline: number | undefined, body: () => T): T {
  return changeDeadline.run(deadline, body);
}

/** What DynamoDB answers a request over its capacity, as an error or as a transaction's cancellation reason. */
const throttleNames = ["ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"];
const throttleReasons = ["ThrottlingError", "ProvisionedThroughputExceeded"];

/**
 * Whether `error` is the store's refusal of a request over its capacity, as a change failed for it after
 * `throttleBudgetMs` (`store.transaction_failed` with a throttle among its reasons) or as a read or a write outside the
 * ledger failed (the error itself). A caller with more time than the API's may try again in place (the applier does).
 */
export function storeThrottled(error: unknown): boolean {
  if (throttleNames.includes((error as { name?: string } | undefined)?.name ?? "")) return true;
  const reasons = (error as { code?: unknown; detail?: { reasons?: unknown } } | undefined)?.detail?.reasons;
  return (
    (error as { code?: unknown } | undefined)?.code === "store.transaction_failed" &&
    Array.isArray(reasons) &&
    reasons.some((reason) => throttleReasons.includes(String(reason)))
  );
}
const maxBackoffMs = 250;
/** Resends of one transaction after failures that leave its outcome unknown. */
const ambiguousRetries = 3;
/** How long a commit waits to be sequenced before it resolves anyway (the next sequencing covers it). */
const sequenceWaitMs = 5_000;
/**
 * How long a change waits for the instance the sequencer designates (`sequenceOnce`, `mine`) before its own instance
 * runs anyway: that instance's run usually covers it within a few tens of milliseconds; longer, it stopped (crashed,
 * frozen, refused by the store), or the change it holds has no waiter any more.
 */
const yieldWaitMs = 500;
/** A change follows a head that keeps moving for at most this many times `yieldWaitMs` before its instance runs. */
const followCap = 5;
/** How long an instance that yielded remembers the tenant as busy (its commits there probe first: `busyTenants`). */
const busyMemoryMs = 10_000;

/** True when the store may have committed although the call failed: no answer, or a server error. */
function ambiguous(error: unknown): boolean {
  if (error instanceof TransactionCanceledException || error instanceof SimrootError) return false;
  const { name, $metadata } = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (name === "TransactionInProgressException") return true;
  const status = $metadata?.httpStatusCode;
  return status === undefined || status >= 500;
}

/** A change of this instance waiting for the feed version that carries it. */
interface Waiter extends OwnCommit {
  readonly urgent: boolean;
  /** When it was committed (ms): it yields to another instance's run for `yieldWaitMs` at most. */
  readonly since: number;
  readonly done: (version?: number) => void;
}

interface Head {
  readonly seq: number;
  readonly hash: string;
}

interface Pending {
  readonly change: Change;
  readonly resolve: (committed: Committed) => void;
  readonly reject: (error: unknown) => void;
  readonly since: number;
  /** Past this (epoch ms) it is not tried again (`withChangeDeadline`). */
  readonly deadline: number | undefined;
  attempts: number;
  /** Commit alone: set after a batch failed for a reason that cannot be pinned on one change. */
  alone: boolean;
}

interface ShardQueue {
  readonly tenantId: string;
  readonly shard: number;
  readonly waiting: Pending[];
  head: Head | undefined;
  running: boolean;
}

/** What one sequencing made visible: the tenant's feed moved from `since` to `version`. */
export type CommitNotice = Omit<SequencedNotice, "vector">;

export interface Ledger {
  commit(change: Change): Promise<Committed>;
  /** Calls `listener` after each feed version this process sequenced; returns the unsubscribe. */
  onCommit(listener: (notice: CommitNotice) => void): () => void;
  /** Sequences whatever the tenant's shards committed and no feed version covers yet (tests, tools; the feed's backstop in AWS is ledger/catch-up.ts). */
  sequence(tenantId: string): Promise<void>;
}

export interface LedgerOptions {
  readonly shards?: number;
  /** Records each change's latency to the feed (FeedLatencyMs, and RevocationLatencyMs for revocations). */
  readonly metrics?: MetricsSink;
  /** Days audit records and feed versions stay in the store (their TTL); default `SIMROOT_AUDIT_RETENTION_DAYS` or 90. */
  readonly auditRetentionDays?: number;
  /** How long a change waits for the designated instance's run before its own instance runs (default `yieldWaitMs`). */
  readonly yieldWaitMs?: number;
}

/** The head of a tenant's shard (tenant-level changes are on shard 0). */
export const headKey = (tenantId: string, shard = 0) => shardHeadKey(tenantId, shard);

const actionsOf = (change: Change) => change.writes.length + change.events.length;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function itemIdentity(item: TransactItem): string | undefined {
  const operation = item.Put ?? item.Update ?? item.Delete ?? item.ConditionCheck;
  const key = (item.Put ? item.Put.Item : (operation as { Key?: Record<string, unknown> } | undefined)?.Key) ?? {};
  return operation ? `${operation.TableName}|${String(key.pk)}|${String(key.sk)}` : undefined;
}

export function createLedger(db: DynamoDBDocumentClient, tables: TableNames, options: LedgerOptions = {}): Ledger {
  const shards = options.shards ?? shardCount;
  const retentionSeconds = (options.auditRetentionDays ?? auditRetentionDays()) * 24 * 60 * 60;
  const waitMs = options.yieldWaitMs ?? yieldWaitMs;
  const queues = new Map<string, ShardQueue>();
  const listeners = new Set<(notice: CommitNotice) => void>();
  const sequencing = new Map<
    string,
    {
      running: boolean;
      again: boolean;
      waiters: Waiter[];
      /** The last run's writes failed in doubt (`SequencingInDoubt`): announced at the next run if they landed. */
      inDoubt: SequencingInDoubt | undefined;
      /** An explicit `sequence()` is waiting: the next run covers everything, and never yields. */
      explicit: boolean;
      /** The newest feed head this instance has seen while the tenant has changes of its waiting (`settleWaiters`). */
      newest?: HeadPoint;
      /** When this instance last saw the head move past `newest` (someone is sequencing: its followers keep waiting). */
      movedAt?: number;
    }
  >();
  /**
   * Tenants where a run of this instance lately yielded (another instance was designated), and when: its next commits
   * there probe first (sequencer.ts `probeTurn`: a few eventually consistent reads instead of the head and the cut,
   * read consistently). A quiet tenant's commit, usually designated, reads the head and the cut at once instead.
   */
  const busyTenants = new Lru<string, number>(1_000);
  /** Per tenant and shard, the feed of the records this process committed and no version of its own covers yet (the sequencer reads them from here, not the store). */
  const committed = new Map<string, Map<number, FeedChange[] | undefined>>();
  const maxKnownPerShard = 4_096;

  function know(tenantId: string, shard: number, records: readonly { seq: number; feed: FeedChange[] | undefined }[]) {
    const id = `${tenantId}|${shard}`;
    let known = committed.get(id);
    if (!known) committed.set(id, (known = new Map()));
    for (const record of records) known.set(record.seq, record.feed);
    while (known.size > maxKnownPerShard) known.delete(known.keys().next().value!);
  }

  const knownRecords = (tenantId: string) => (shard: number, after: number, upTo: number) => {
    const known = committed.get(`${tenantId}|${shard}`);
    if (!known) return undefined;
    const records = [];
    for (let seq = after + 1; seq <= upTo; seq++) {
      if (!known.has(seq)) return undefined;
      const feed = known.get(seq);
      records.push({ seq, ...(feed ? { feed } : {}) });
    }
    return records;
  };

  function forgetCovered(tenantId: string, vector: readonly number[]) {
    vector.forEach((to, shard) => {
      const known = committed.get(`${tenantId}|${shard}`);
      if (!known) return;
      for (const seq of known.keys()) if (seq <= to) known.delete(seq);
      if (known.size === 0) committed.delete(`${tenantId}|${shard}`);
    });
  }

  /** Takes the longest prefix of the queue that fits one transaction and touches no item twice. */
  function takeBatch(queue: ShardQueue): Pending[] {
    const batch: Pending[] = [];
    const touched = new Set<string>();
    let actions = 1; // the head update
    for (const pending of queue.waiting) {
      const keys = pending.change.writes.map(itemIdentity).filter((key): key is string => key !== undefined);
      const fits = actions + actionsOf(pending.change) <= maxActions && !keys.some((key) => touched.has(key));
      if (batch.length > 0 && (!fits || pending.alone || batch[0]!.alone)) break;
      batch.push(pending);
      actions += actionsOf(pending.change);
      for (const key of keys) touched.add(key);
    }
    queue.waiting.splice(0, batch.length);
    return batch;
  }

  function build(queue: ShardQueue, head: Head, batch: Pending[], now: string) {
    const items: TransactItem[] = [];
    const owners: { pending: Pending; writeIndex: number }[] = [];
    const results: { sequence: number; last: number }[] = [];
    const records: { seq: number; feed: FeedChange[] | undefined }[] = [];
    let { seq, hash } = head;
    for (const pending of batch) {
      const { change } = pending;
      // The record that carries the change's feed entries: its last.
      const by = { shard: queue.shard, seq: seq + change.events.length };
      const positioned = new Set(change.positioned ?? []);
      change.writes.forEach((write, writeIndex) => {
        items.push(positioned.has(writeIndex) && write.Put ? { ...write, Put: { ...write.Put, Item: { ...write.Put.Item, by } } } : write);
        owners.push({ pending, writeIndex });
      });
      const first = seq + 1;
      change.events.forEach((event, index) => {
        seq += 1;
        const last = index === change.events.length - 1;
        const feed = last && change.feed && change.feed.length > 0 ? [...change.feed] : undefined;
        records.push({ seq, feed: feed && (JSON.parse(JSON.stringify(feed)) as FeedChange[]) });
        const audit = auditItem(
          tables,
          event,
          queue.shard,
          seq,
          hash,
          last ? change.feed : undefined,
          retentionSeconds,
          last ? change.leases : undefined,
        );
        hash = audit.hash;
        items.push(audit.put);
        owners.push({ pending, writeIndex: -1 });
      });
      results.push({ sequence: first, last: seq });
    }
    const previous = head.seq;
    items.push({
      Put: {
        TableName: tables.control,
        Item: { ...headKey(queue.tenantId, queue.shard), seq, hash, updatedAt: now },
        ConditionExpression: previous === 0 ? "attribute_not_exists(pk)" : "seq = :previous",
        ...(previous === 0 ? {} : { ExpressionAttributeValues: { ":previous": previous } }),
      },
    });
    return { items, owners, results, records, head: { seq, hash } };
  }

  /** Sends one transaction; an ambiguous failure is resent with the same token (idempotent for 10 minutes). */
  async function send(items: TransactItem[]) {
    const token = randomUUID();
    for (let attempt = 0; ; attempt++) {
      try {
        return await db.send(new TransactWriteCommand({ TransactItems: items, ClientRequestToken: token }));
      } catch (error) {
        if (!ambiguous(error) || attempt >= ambiguousRetries) throw error;
        await sleep(Math.random() * 20 * 2 ** attempt);
      }
    }
  }

  async function drain(queue: ShardQueue) {
    queue.running = true;
    try {
      while (queue.waiting.length > 0) {
        const batch = takeBatch(queue);
        queue.head ??= await readShardHead(db, tables, queue.tenantId, queue.shard).catch((error: unknown) => {
          for (const pending of batch) pending.reject(error);
          return undefined;
        });
        if (!queue.head) continue;
        let built: ReturnType<typeof build>;
        try {
          built = build(queue, queue.head, batch, new Date().toISOString());
        } catch (error) {
          // A change that cannot even be written down (hashing failed) fails alone; nothing was sent.
          if (batch.length === 1) batch[0]!.reject(error);
          else for (const pending of batch) pending.alone = true;
          if (batch.length > 1) queue.waiting.unshift(...batch);
          continue;
        }
        try {
          await send(built.items);
        } catch (error) {
          queue.head = undefined;
          await settleFailure(queue, batch, built.owners, error);
          continue;
        }
        // Committed: from here on nothing may make the batch commit again (a listener or a sequencing failure included).
        queue.head = built.head;
        know(queue.tenantId, queue.shard, built.records);
        batch.forEach((pending, index) => {
          const { sequence, last } = built.results[index]!;
          const commit = { shard: queue.shard, from: sequence, seq: last };
          void awaitSequenced(queue.tenantId, commit, urgentEntries(pending.change.feed ?? [])).then((version) => {
            recordLatency(pending.change, Date.now() - pending.since);
            pending.resolve({ sequence, shard: queue.shard, version });
          });
        });
        requestSequence(queue.tenantId);
      }
    } finally {
      queue.running = false;
      if (queue.waiting.length === 0) queues.delete(`${queue.tenantId}|${queue.shard}`);
    }
  }

  /** Time in the ledger until the feed carries the change (or until the wait for it gave up: then at least `sequenceWaitMs`). */
  function recordLatency(change: Change, ms: number) {
    if (!options.metrics) return;
    options.metrics.add("FeedLatencyMs", ms);
    if (change.events.some((event) => event.type === "device.revoked")) options.metrics.add("RevocationLatencyMs", ms);
  }

  const withoutVector = ({ vector: _vector, ...notice }: SequencedNotice): CommitNotice => notice;

  /** A listener's failure is its own: logged, never taken for a failed commit or a failed sequencing. */
  function notify(notice: CommitNotice) {
    for (const listener of listeners) {
      try {
        listener(notice);
      } catch (error) {
        console.error(
          JSON.stringify({
            level: "error",
            component: "ledger",
            tenantId: notice.tenantId,
            message: "commit listener failed",
            error: String(error),
          }),
        );
      }
    }
  }

  async function settleFailure(queue: ShardQueue, batch: Pending[], owners: { pending: Pending; writeIndex: number }[], error: unknown) {
    const retry: Pending[] = [];
    const reasons = error instanceof TransactionCanceledException ? (error.CancellationReasons ?? []) : [];
    const failedOwn = new Set<Pending>();
    reasons.forEach((reason, index) => {
      const owner = owners[index];
      if (reason.Code !== "ConditionalCheckFailed" || !owner || owner.writeIndex < 0) return;
      failedOwn.add(owner.pending);
      owner.pending.reject(
        owner.pending.change.onConditionFailed?.(owner.writeIndex) ??
          new SimrootError("store.conflict", "conflict", "The record changed concurrently; retry", { cause: error }),
      );
    });
    const contended =
      reasons.length > 0 &&
      reasons.every((reason) => ["None", "ConditionalCheckFailed", "TransactionConflict"].includes(reason.Code ?? "None"));
    const overCapacity =
      reasons.some((reason) => throttleReasons.includes(reason.Code ?? "")) ||
      throttleNames.includes((error as { name?: string } | undefined)?.name ?? "");
    const throttled = overCapacity || busy(error);
    const budgetMs = overCapacity ? throttleBudgetMs : contentionBudgetMs;
    // The items the store throttled, when every one of them is a change's own (a hot device or binding, not the shard's
    // head or chain, which every change of the shard writes): while other changes wait (batch-mates or later ones),
    // those changes go to the back of the queue, each alone, and the others go at once. Retried in place, a hot change
    // failed its whole batch after `throttleBudgetMs`, and held every later change of the shard behind it as long.
    const hot = new Set<Pending>();
    const split =
      reasons.every((reason, index) => {
        const owner = owners[index];
        return !throttleReasons.includes(reason.Code!) || (owner && owner.writeIndex >= 0 && hot.add(owner.pending));
      }) &&
      hot.size > 0 &&
      // Others wait: batch-mates neither hot nor refused, or later changes.
      batch.length + queue.waiting.length > hot.size + failedOwn.size;
    for (const pending of batch) {
      if (failedOwn.has(pending)) continue;
      if (split && !hot.has(pending)) {
        retry.push(pending);
        continue;
      }
      pending.attempts += 1;
      if (!contended && !throttled && batch.length > 1) pending.alone = true;
      else if (
        (!contended && !throttled) ||
        Date.now() - pending.since > budgetMs ||
        Date.now() > (pending.deadline ?? Number.POSITIVE_INFINITY)
      ) {
        pending.reject(
          error instanceof TransactionCanceledException
            ? new SimrootError(
                "store.transaction_failed",
                "unavailable",
                `The store refused the write (${reasons.map((reason) => reason.Code).join(",")}); retry`,
                {
                  cause: error,
                  detail: { reasons: reasons.map((reason) => reason.Code ?? "None") },
                },
              )
            : error,
        );
        continue;
      }
      retry.push(pending);
    }
    // Split: the hot changes go to the back, alone, after the same pause as ever (two hot changes of one shard would
    // otherwise take turns at the store with none: review 155).
    const back = split ? retry.filter((pending) => hot.has(pending)) : [];
    for (const pending of back) pending.alone = true;
    queue.waiting.unshift(...retry.filter((pending) => !back.includes(pending)));
    queue.waiting.push(...back);
    if (retry.length > 0 && failedOwn.size === 0) {
      const attempt = Math.max(...retry.map((pending) => pending.attempts));
      await sleep(Math.random() * Math.min(maxBackoffMs, 5 * 2 ** attempt));
    }
  }

  function sequencerOf(tenantId: string) {
    let state = sequencing.get(tenantId);
    if (!state) sequencing.set(tenantId, (state = { running: false, again: false, waiters: [], inDoubt: undefined, explicit: false }));
    return state;
  }

  /**
   * Resolves with the feed version that covers `seq` of `shard` (undefined if not seen within `sequenceWaitMs`): a
   * change whose records are `from` to `seq`; `urgent` when PEPs must learn it at once (`urgentEntries`: its run never
   * yields).
   */
  function awaitSequenced(tenantId: string, commit: OwnCommit, urgent: boolean): Promise<number | undefined> {
    return new Promise((resolve) => {
      const state = sequencerOf(tenantId);
      const timer = setTimeout(() => finish(undefined), sequenceWaitMs);
      const waiter: Waiter = { ...commit, urgent, since: Date.now(), done: (version?: number) => finish(version) };
      function finish(version?: number) {
        clearTimeout(timer);
        const at = state.waiters.indexOf(waiter);
        if (at >= 0) state.waiters.splice(at, 1);
        resolve(version);
      }
      state.waiters.push(waiter);
    });
  }

  /** A head reached `version` at `vector`: the changes it covers are settled, and their records forgotten. */
  function settleWaiters(tenantId: string, version: number, vector: readonly number[]) {
    const state = sequencing.get(tenantId);
    if (state && version > (state.newest?.version ?? -1)) {
      if (state.newest) state.movedAt = Date.now();
      state.newest = { version, vector };
    }
    for (const waiter of [...(state?.waiters ?? [])]) if ((vector[waiter.shard] ?? 0) >= waiter.seq) waiter.done(version);
    forgetCovered(tenantId, vector);
  }

  /**
   * How much longer this instance's changes may wait for another instance's run: until the head has not moved for
   * `yieldWaitMs` (counted from the oldest change, or from the last move seen after it: a designated instance that
   * keeps moving the head is working, however slow the store, and followers that ran themselves would race it), and at
   * most `followCap` times that from the oldest change.
   */
  function waitLeft(state: ReturnType<typeof sequencerOf>) {
    const oldest = Math.min(...state.waiters.map((waiter) => waiter.since));
    const now = Date.now();
    return Math.min(waitMs - (now - Math.max(oldest, state.movedAt ?? 0)), followCap * waitMs - (now - oldest));
  }

  /**
   * After a run yielded at `seen`: reads the feed head (eventually consistent: half a read unit, on an item every
   * committing instance reads; an older head only makes it read again) at growing intervals, settling the changes it
   * covers, until none waits, the head moves (the designation moves with it: the caller runs again to see whether it is
   * this instance's turn), a change of this instance asks for a run, or its changes may wait no longer (`waitLeft`).
   */
  async function followHead(tenantId: string, state: ReturnType<typeof sequencerOf>, seen: number) {
    for (let pause = 10; state.waiters.length > 0 && !state.again; pause = Math.min(pause * 2, 40)) {
      const left = waitLeft(state);
      if (left <= 0) return;
      await sleep(Math.min(pause, left));
      if (state.again) return;
      const head = await readFeedHead(db, tables, tenantId, shards, false);
      settleWaiters(tenantId, head.version, head.vector);
      // The designation moved: run again if it may be this instance's turn (it holds the change at a shard's next position).
      if (head.version > seen && state.waiters.some((waiter) => holdsNext(waiter, head.vector))) return;
    }
  }

  /** Runs the sequencer for the tenant, one run at a time per process; requests during a run make one more. */
  function requestSequence(tenantId: string, explicit = false): Promise<void> {
    const state = sequencerOf(tenantId);
    state.again = true;
    if (explicit) state.explicit = true;
    if (state.running) return Promise.resolve();
    state.running = true;
    return (async () => {
      let failures = 0;
      try {
        while (state.again) {
          state.again = false;
          try {
            // The last run's writes failed in doubt: announce its versions if they landed (else an adopter does).
            if (state.inDoubt) {
              if (await landed(db, tables, state.inDoubt, shards)) notify(withoutVector(state.inDoubt.notice));
              state.inDoubt = undefined;
            }
            // One instance at a time sequences a busy tenant (sequencer.ts `sequenceOnce`, `mine`); the others follow the
            // head until it covers their changes, or until it has not moved for `yieldWaitMs` (`waitLeft`): then they run,
            // as every committing instance did before. An explicit run, and a change PEPs must learn at once, never wait.
            const yielding =
              !state.explicit && state.waiters.length > 0 && !state.waiters.some((waiter) => waiter.urgent) && waitLeft(state) > 0;
            const mine = yielding ? () => state.waiters.map(({ shard, from, seq }) => ({ shard, from, seq })) : undefined;
            const probe = yielding && Date.now() - (busyTenants.get(tenantId) ?? 0) < busyMemoryMs ? { newest: state.newest } : undefined;
            const result = await sequenceOnce(
              db,
              tables,
              tenantId,
              shards,
              new Date(),
              knownRecords(tenantId),
              retentionSeconds,
              mine,
              probe,
            );
            // An explicit request is done once a run that did not wait found nothing new or moved the head.
            if (!yielding && (result === undefined || (typeof result === "object" && "version" in result))) state.explicit = false;
            if (typeof result === "object" && "yielded" in result) {
              busyTenants.set(tenantId, Date.now());
              settleWaiters(tenantId, result.yielded.version, result.yielded.vector);
              await followHead(tenantId, state, result.yielded.version);
              if (state.waiters.length > 0) state.again = true;
              continue;
            }
            if (result === "raced" || (result && "raced" in result)) {
              // Another instance moved the feed head: see what it covers, and go again if ours is not in it. When this
              // run moved it (to a version the other wrote but did not get to move the head to), it announces it.
              if (typeof result === "object") notify(withoutVector(result.adopted));
              const head = await readFeedHead(db, tables, tenantId, shards);
              settleWaiters(tenantId, head.version, head.vector);
              if (state.waiters.length > 0) state.again = true;
              await sleep(Math.random() * 10);
              continue;
            }
            failures = 0;
            if (result) {
              settleWaiters(tenantId, result.version, result.vector);
              notify(withoutVector(result));
            } else {
              const head = await readFeedHead(db, tables, tenantId, shards);
              settleWaiters(tenantId, head.version, head.vector);
            }
          } catch (error) {
            // The store refused the sequencing (throttled, timed out): try again shortly while a commit of this
            // instance waits for its version (each wait ends after `sequenceWaitMs`); with none waiting, past a few
            // failures, the next commit's run or the feed's backstop (the history reader: ledger/catch-up.ts) covers it.
            failures++;
            if (error instanceof SequencingInDoubt) state.inDoubt = error;
            console.error(
              JSON.stringify({
                // A blocked feed needs an operator (see sequencer.ts `FeedBlocked`); the store's refusals pass.
                level: error instanceof FeedBlocked ? "error" : "warn",
                component: "ledger",
                tenantId,
                message: "sequencing failed; retrying",
                failures,
                waiting: state.waiters.length,
                error:
                  error instanceof FeedBlocked
                    ? error.message
                    : String(((error instanceof SequencingInDoubt ? error.cause : error) as Error)?.name ?? error),
              }),
            );
            if (failures > 5 && state.waiters.length === 0) {
              // Given up until the next commit: a move in doubt is no longer announced (PEPs learn it from their next
              // head poll), and nothing of the tenant is kept.
              state.inDoubt = undefined;
              break;
            }
            state.again = true;
            await sleep(Math.random() * Math.min(maxBackoffMs, 10 * 2 ** failures));
          }
        }
      } finally {
        state.running = false;
        if (state.waiters.length === 0 && !state.again) sequencing.delete(tenantId);
      }
    })();
  }

  return {
    onCommit(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async sequence(tenantId) {
      await requestSequence(tenantId, true);
      const state = sequencing.get(tenantId);
      while (state?.running) await sleep(5);
    },
    commit(change) {
      if (change.events.length === 0) throw new Error("a change must say what happened: at least one event");
      if (actionsOf(change) + 1 > maxActions) {
        return Promise.reject(new SimrootError("store.change_too_large", "input", "The change exceeds one transaction"));
      }
      const shard = change.shard ?? shardOfSubject(change.events[0]!.subject, shards);
      const id = `${change.tenantId}|${shard}`;
      let queue = queues.get(id);
      if (!queue) {
        queue = { tenantId: change.tenantId, shard, waiting: [], head: undefined, running: false };
        queues.set(id, queue);
      }
      const committed = new Promise<Committed>((resolve, reject) => {
        queue.waiting.push({ change, resolve, reject, attempts: 0, alone: false, since: Date.now(), deadline: changeDeadline.getStore() });
      });
      if (!queue.running) void drain(queue);
      return committed;
    },
  };
}
