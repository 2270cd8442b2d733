/**
 * The ledger: the one path by which state changes commit. Each change's writes and its
 * hash-chained audit records (which carry its change-feed entries) go into one DynamoDB transaction,
 * together with a conditional update of the tenant's head (sequence and last hash), so the
 * chain and the feed can neither fork nor skip.
 *
 * Changes of one tenant that arrive while a transaction is in flight are coalesced into the
 * next one (up to DynamoDB's 100 actions): independent changes share a transaction, and so
 * a round trip, as a database's group commit does. A change whose own condition fails is
 * rejected alone; the others are retried without it.
 */
import { randomUUID } from "node:crypto";
import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { GetCommand, TransactWriteCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { TableNames } from "../config.ts";
import { SimrootError } from "../error.ts";
import type { TransactItem } from "../store/transaction.ts";
import { auditItem } from "./audit-record.ts";
import type { Change, Committed, FeedChange } from "./change.ts";
import { genesisHash } from "./chain.ts";

const maxActions = 100;
const maxAttempts = 8;
/** Resends of one transaction after failures that leave its outcome unknown. */
const maxAmbiguousAttempts = 4;

/** True when the store may have committed although the call failed: no answer, or a server error. */
function ambiguous(error: unknown): boolean {
  if (error instanceof TransactionCanceledException) return false;
  const { name, $metadata } = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (name === "TransactionInProgressException") return true;
  const status = $metadata?.httpStatusCode;
  return status === undefined || status >= 500;
}

interface Head {
  readonly seq: number;
  readonly hash: string;
}

interface Pending {
  readonly change: Change;
  readonly resolve: (committed: Committed) => void;
  readonly reject: (error: unknown) => void;
  attempts: number;
  /** Commit alone: set after a batch failed for a reason that cannot be pinned on one change. */
  alone: boolean;
}

interface TenantQueue {
  readonly waiting: Pending[];
  head: Head | undefined;
  running: boolean;
}

/** What one transaction committed: the tenant's head moved from `since` to `version`. */
export interface CommitNotice {
  readonly tenantId: string;
  readonly since: number;
  readonly version: number;
  /** The feed changes of the records in (since, version], each at its record's seq, in order. */
  readonly feed: readonly { readonly version: number; readonly changes: readonly FeedChange[] }[];
}

export interface Ledger {
  commit(change: Change): Promise<Committed>;
  /** Calls `listener` after each commit of this process; returns the unsubscribe. */
  onCommit(listener: (notice: CommitNotice) => void): () => void;
}

export const headKey = (tenantId: string) => ({ pk: `T#${tenantId}`, sk: "head" });

const actionsOf = (change: Change) => change.writes.length + change.events.length;

function itemIdentity(item: TransactItem): string | undefined {
  const operation = item.Put ?? item.Update ?? item.Delete ?? item.ConditionCheck;
  const key = (item.Put ? item.Put.Item : (operation as { Key?: Record<string, unknown> } | undefined)?.Key) ?? {};
  return operation ? `${operation.TableName}|${String(key.pk)}|${String(key.sk)}` : undefined;
}

export function createLedger(db: DynamoDBDocumentClient, tables: TableNames): Ledger {
  const queues = new Map<string, TenantQueue>();
  const listeners = new Set<(notice: CommitNotice) => void>();

  async function readHead(tenantId: string): Promise<Head> {
    const { Item } = await db.send(new GetCommand({ TableName: tables.control, Key: headKey(tenantId), ConsistentRead: true }));
    return Item ? { seq: Number(Item.seq), hash: String(Item.hash) } : { seq: 0, hash: genesisHash };
  }

  /** Takes the longest prefix of the queue that fits one transaction and touches no item twice. */
  function takeBatch(queue: TenantQueue): Pending[] {
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

  function build(tenantId: string, head: Head, batch: Pending[], now: string) {
    const items: TransactItem[] = [];
    const owners: { pending: Pending; writeIndex: number }[] = [];
    const results: Committed[] = [];
    const feed: CommitNotice["feed"][number][] = [];
    let { seq, hash } = head;
    for (const pending of batch) {
      const { change } = pending;
      change.writes.forEach((write, writeIndex) => {
        items.push(write);
        owners.push({ pending, writeIndex });
      });
      const first = seq + 1;
      change.events.forEach((event, index) => {
        seq += 1;
        const last = index === change.events.length - 1;
        const audit = auditItem(tables, event, seq, hash, last ? change.feed : undefined);
        hash = audit.hash;
        items.push(audit.put);
        owners.push({ pending, writeIndex: -1 });
      });
      results.push({ sequence: first, version: seq });
      if (change.feed && change.feed.length > 0) feed.push({ version: seq, changes: change.feed });
    }
    const previous = head.seq;
    items.push({
      Put: {
        TableName: tables.control,
        Item: { ...headKey(tenantId), seq, hash, updatedAt: now },
        ConditionExpression: previous === 0 ? "attribute_not_exists(pk)" : "seq = :previous",
        ...(previous === 0 ? {} : { ExpressionAttributeValues: { ":previous": previous } }),
      },
    });
    return { items, owners, results, feed, head: { seq, hash } };
  }

  async function drain(tenantId: string, queue: TenantQueue) {
    queue.running = true;
    try {
      while (queue.waiting.length > 0) {
        const batch = takeBatch(queue);
        queue.head ??= await readHead(tenantId).catch((error: unknown) => {
          for (const pending of batch) pending.reject(error);
          return undefined;
        });
        if (!queue.head) continue;
        let built: ReturnType<typeof build>;
        try {
          built = build(tenantId, queue.head, batch, new Date().toISOString());
        } catch (error) {
          // A change that cannot even be written down (hashing failed) fails alone; nothing was sent.
          if (batch.length === 1) batch[0]!.reject(error);
          else for (const pending of batch) pending.alone = true;
          if (batch.length > 1) queue.waiting.unshift(...batch);
          continue;
        }
        const previousSeq = queue.head.seq;
        try {
          await sendOnce(built.items);
        } catch (error) {
          queue.head = undefined;
          await settleFailure(queue, batch, built.owners, error);
          continue;
        }
        // Committed: from here on nothing may send the batch again.
        queue.head = built.head;
        batch.forEach((pending, index) => pending.resolve(built.results[index]!));
        notify({ tenantId, since: previousSeq, version: built.head.seq, feed: built.feed });
      }
    } finally {
      queue.running = false;
    }
  }

  /**
   * One transaction, sent until the store gives a definite answer. An ambiguous failure (the
   * connection dropped, a timeout, a 5xx: the store may have committed) is resent with the same
   * ClientRequestToken, which DynamoDB honours for 10 minutes: a commit that already happened is
   * acknowledged, not made twice.
   */
  async function sendOnce(items: TransactItem[]): Promise<void> {
    const token = randomUUID();
    for (let attempt = 1; ; attempt++) {
      try {
        await db.send(new TransactWriteCommand({ TransactItems: items, ClientRequestToken: token }));
        return;
      } catch (error) {
        if (!ambiguous(error) || attempt >= maxAmbiguousAttempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
      }
    }
  }

  /** A listener's failure is its own: logged, never taken for a failed commit. */
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
            message: "a commit listener failed",
            error: String(error),
          }),
        );
      }
    }
  }

  async function settleFailure(queue: TenantQueue, batch: Pending[], owners: { pending: Pending; writeIndex: number }[], error: unknown) {
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
    const headOrConflict =
      reasons.length > 0 &&
      reasons.every((reason) => ["None", "ConditionalCheckFailed", "TransactionConflict"].includes(reason.Code ?? "None"));
    for (const pending of batch) {
      if (failedOwn.has(pending)) continue;
      pending.attempts += 1;
      if (!headOrConflict && batch.length > 1) pending.alone = true;
      else if (!headOrConflict || pending.attempts >= maxAttempts) {
        pending.reject(
          error instanceof TransactionCanceledException
            ? new SimrootError("store.transaction_failed", "unavailable", "The store refused the write; retry", { cause: error })
            : error,
        );
        continue;
      }
      retry.push(pending);
    }
    queue.waiting.unshift(...retry);
    if (retry.length > 0 && failedOwn.size === 0) {
      const attempt = Math.max(...retry.map((pending) => pending.attempts));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * 2 ** attempt));
    }
  }

  return {
    onCommit(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    commit(change) {
      if (change.events.length === 0) throw new Error("a change must say what happened: at least one event");
      if (actionsOf(change) + 1 > maxActions) {
        return Promise.reject(new SimrootError("store.change_too_large", "input", "The change exceeds one transaction"));
      }
      let queue = queues.get(change.tenantId);
      if (!queue) {
        queue = { waiting: [], head: undefined, running: false };
        queues.set(change.tenantId, queue);
      }
      const committed = new Promise<Committed>((resolve, reject) => {
        queue.waiting.push({ change, resolve, reject, attempts: 0, alone: false });
      });
      if (!queue.running) void drain(change.tenantId, queue);
      return committed;
    },
  };
}
