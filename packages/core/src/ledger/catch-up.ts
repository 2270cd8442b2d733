/**
 * The feed's backstop. An instance that commits a change sequences it right after (ledger.ts `requestSequence`), and
 * retries while its commit waits. In Lambda that instance can stop before the feed carries the change: killed at its
 * timeout, frozen once it has answered (its retries then wait for its next invocation, which may never come), or
 * refused by the store for longer than its commit waits. The record is then committed, in the audit trail, and in no
 * feed version until the tenant's next change: for an idle tenant, a revocation that never reaches a PEP. Likewise a
 * version left written past the head (its run stopped before moving the head) waits for the next run.
 *
 * The history (the audit stream's second reader) sees every committed record. For each tenant of a batch it reads the
 * feed head; records the head does not cover yet are given until `graceMs` after their time (the verb's start, so at
 * least that long after their commit's start; their committer is most likely sequencing them), then the history runs
 * the sequencing itself, as any instance does: it adopts a version left past the head, races harmlessly with a late
 * committer, and announces (awaited: a Lambda frozen after answering sends nothing) what it moved. It tries again until
 * the head covers the records or `budgetMs` has passed; what is still not covered then is reported, and the stream gives
 * the batch again from there (its history is written again, idempotently). A tenant whose feed is blocked (a version
 * past the head that no sequencing wrote, `FeedBlocked`: the feed fails closed and needs an operator) or whose records
 * lie past their shard's head item (written into the audit table by hand: no run will sequence them) is logged and
 * left, not retried: it must not hold back the history of every tenant on its stream shard.
 */
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { auditRetentionDays } from "../config.ts";
import { eventsOfStream, type OutboxStreamRecord } from "../outbox/outbox.ts";
import type { Ports } from "../ports.ts";
import type { AuditRecord } from "./audit-record.ts";
import { GetCommand, UpdateCommand, type UpdateCommandInput } from "@aws-sdk/lib-dynamodb";
import { feedHeadKey } from "./feed-version.ts";
import {
  FeedBlocked,
  landed,
  noticeIntervalMs,
  readFeedHead,
  SequencingInDoubt,
  sequenceOnce,
  type FeedHeadState,
  type SequencedNotice,
} from "./sequencer.ts";
import { shardCount } from "./shard.ts";

export interface CatchUpOptions {
  /** How long after a record's time the reader waits for its committer to sequence it. */
  readonly graceMs?: number;
  /** How often the head is read again while waiting. */
  readonly pollMs?: number;
  /** How long the reader keeps sequencing a tenant whose records stay uncovered before it reports them. */
  readonly budgetMs?: number;
}

export const catchUpGraceMs = 2_000;

export interface CatchUpResult {
  /** Tenants whose records the reader sequenced itself. */
  readonly sequenced: string[];
  /** Tenants whose records are still not covered (the store refused, the budget ran out): give the batch again. */
  readonly uncovered: string[];
  /** Tenants whose feed is blocked, or whose records no run will sequence (logged as an error; not retried). */
  readonly blocked: string[];
  /** The trailing notices of the batch's tenants (`announceTrailing`): a Lambda awaits them before it returns. Never rejects. */
  readonly trailing: Promise<void>;
}

type Covered = Pick<AuditRecord, "tenantId" | "shard" | "seq" | "time">;

/** Sequences the tenants whose records the feed head still does not cover after the grace. */
export async function catchUpFeed(
  records: readonly Covered[],
  ports: Pick<Ports, "db" | "tables" | "feedNotifier">,
  options: CatchUpOptions = {},
): Promise<CatchUpResult> {
  const graceMs = options.graceMs ?? catchUpGraceMs;
  const pollMs = options.pollMs ?? 50;
  const deadline = Date.now() + (options.budgetMs ?? 20_000);
  const retentionSeconds = auditRetentionDays() * 86_400;
  // Per tenant, per shard: the last sequence the batch holds, and the newest record's time.
  const tenants = new Map<string, { last: Map<number, number>; newest: number }>();
  for (const record of records) {
    const tenant = tenants.get(record.tenantId) ?? { last: new Map<number, number>(), newest: 0 };
    tenant.last.set(record.shard, Math.max(tenant.last.get(record.shard) ?? 0, record.seq));
    // A record's time is its committer's clock: one ahead of this one's would hold the backstop off for as long, the
    // change out of an idle tenant's feed and the stream's batch given again meanwhile (review 105).
    tenant.newest = Math.max(tenant.newest, Math.min(Date.parse(record.time) || 0, Date.now()));
    tenants.set(record.tenantId, tenant);
  }
  const trailing: Promise<void>[] = [];
  const result = { sequenced: [] as string[], uncovered: [] as string[], blocked: [] as string[], trailing: Promise.resolve() };
  const announce = async (notice: SequencedNotice) => {
    await ports.feedNotifier?.publish({ tenantId: notice.tenantId, version: notice.version }).catch(() => {});
  };
  await Promise.all(
    [...tenants].map(async ([tenantId, { last, newest }]) => {
      let ran = false;
      let failures = 0;
      let unanchored = 0;
      for (;;) {
        const head = await readFeedHead(ports.db, ports.tables, tenantId, shardCount).catch(() => undefined);
        if (head && [...last].every(([shard, seq]) => (head.vector[shard] ?? 0) >= seq)) {
          if (ran) result.sequenced.push(tenantId);
          trailing.push(announceTrailing(ports, tenantId, head));
          return;
        }
        if (Date.now() >= deadline) return void result.uncovered.push(tenantId);
        const wait = newest + graceMs - Date.now();
        if (!head || wait > 0) {
          // A refused head read backs off as a refused run does.
          const pause = head ? Math.min(pollMs, wait) : Math.random() * Math.min(1_000, 20 * 2 ** ++failures);
          await sleep(Math.max(1, Math.min(pause, deadline - Date.now())));
          continue;
        }
        ran = true;
        try {
          const run = await sequenceOnce(ports.db, ports.tables, tenantId, shardCount, new Date(), undefined, retentionSeconds);
          const moved = run && run !== "raced" && !("yielded" in run) ? ("raced" in run ? run.adopted : run) : undefined;
          // A run with no urgent change within the notice interval announces nothing (the trailing notice below tells of it).
          if (moved?.announce) await announce(moved);
          // Nothing past the head by the shard heads, yet records past it: a transaction's items seen one by one for a
          // moment, or records no commit anchored (written into the audit table by hand), which no run will sequence.
          if (run === undefined && ++unanchored > 3) {
            console.error(
              JSON.stringify({ level: "error", component: "feed-catch-up", tenantId, message: "records past their shard's head item" }),
            );
            return void result.blocked.push(tenantId);
          }
          if (run === undefined) await sleep(pollMs);
        } catch (error) {
          // A blocked feed (a version past the head that no sequencing wrote) fails the same way every time: left to its
          // log and alarm, never to hold back the history of every tenant on the stream shard. Anything else (the store
          // refusing, a run that stops to be tried again: a shard head or a binding not yet visible at its record, a
          // transaction conflict) is tried again within the budget, then given again by the stream.
          if (error instanceof FeedBlocked) {
            console.error(JSON.stringify({ level: "error", component: "feed-catch-up", tenantId, message: error.message }));
            return void result.blocked.push(tenantId);
          }
          if (
            error instanceof SequencingInDoubt &&
            error.notice.announce &&
            (await landed(ports.db, ports.tables, error).catch(() => false))
          ) {
            await announce(error.notice);
          }
          await sleep(Math.random() * Math.min(1_000, 20 * 2 ** ++failures));
        }
      }
    }),
  );
  result.trailing = Promise.all(trailing).then(() => {});
  return result;
}

/**
 * The trailing notice of a burst. A run with no urgent change within `noticeIntervalMs` of the tenant's last notice
 * does not announce (sequencer.ts); the next run past the interval does. When none comes (the burst ended), the history
 * tells of the versions still unannounced once the interval has passed: it waits for it (at most the interval) and,
 * when no notice told of them meanwhile, marks them told up to the head as it is then (a run that announced first
 * wins) and publishes a bare notice (PEPs poll for the change; the history holds no signing key). The history function
 * awaits it before it returns; the local reader lets it run beside the stream (its position does not wait for it).
 *
 * One invocation waits per notice, not every one that finds the versions untold: a tenant's records arrive on one
 * stream shard per ledger shard, so up to 16 invocations at once find the same burst, and each would be billed for the
 * wait. The first takes it on (`claimTrailing`); the others return at once. One that takes it on and then stops (its
 * function killed) leaves the versions to the next notice or to the PEPs' idle poll, as a lost notice is.
 */
async function announceTrailing(ports: Pick<Ports, "db" | "tables" | "feedNotifier">, tenantId: string, seen: FeedHeadState) {
  if (!ports.feedNotifier || seen.noticedVersion >= seen.version) return;
  if (!(await claimTrailing(ports, tenantId, seen))) return;
  const due = seen.noticedAt + noticeIntervalMs - Date.now();
  if (due > 0) await sleep(Math.min(due, noticeIntervalMs));
  // Every version up to the head is marked told, whatever the head has reached meanwhile (a run that moved it without
  // announcing, one started within the interval or whose clock is behind, left its version to this invocation too:
  // the others left theirs to it), in one write conditional on no notice since `seen`'s. A store that refuses leaves
  // the versions to the PEPs' idle poll, as a lost notice is. (A mark conditional on the head as read was lost to such
  // a run, and retried marks could be lost to several: a helper review left a claim standing with no one to tell.)
  const now = new Date().toISOString();
  const marked = await updateFeedHead(
    ports,
    tenantId,
    {
      UpdateExpression: "SET noticedVersion = #version, noticedAt = :now",
      ConditionExpression: "noticedVersion = :told AND #version > :told",
      ExpressionAttributeNames: { "#version": "version" },
      ExpressionAttributeValues: { ":told": seen.noticedVersion, ":now": now },
      ReturnValues: "UPDATED_NEW",
    },
    (item) => item.noticedAt === now,
  );
  if (marked.outcome === "landed") {
    await ports.feedNotifier.publish({ tenantId, version: Number(marked.item?.noticedVersion) }).catch(() => {});
  }
}

/**
 * Takes on the trailing notice after `seen.noticedVersion`: marks the feed head (`trailingFor`, which head moves leave
 * and the next notice voids), conditional on no notice since and no other taker. False when another invocation has
 * taken it on (or a notice went out meanwhile). A store that refuses the mark leaves the invocation to wait as before.
 */
async function claimTrailing(ports: Pick<Ports, "db" | "tables">, tenantId: string, seen: FeedHeadState): Promise<boolean> {
  if (seen.trailingFor === seen.noticedVersion && seen.trailingFor > 0) return false;
  const token = randomUUID();
  const claimed = await updateFeedHead(
    ports,
    tenantId,
    {
      UpdateExpression: "SET trailingFor = :told, trailingBy = :token",
      ConditionExpression: "noticedVersion = :told AND (attribute_not_exists(trailingFor) OR trailingFor <> :told)",
      ExpressionAttributeValues: { ":told": seen.noticedVersion, ":token": token },
    },
    (item) => item.trailingBy === token && Number(item.trailingFor) === seen.noticedVersion,
  );
  return claimed.outcome !== "lost";
}

/**
 * A conditional update of the feed head, whether it landed, and the head's attributes it returned (or as read back). A
 * refused condition may hide a first send that landed and whose answer was lost (the SDK sent it again): the head is
 * read back and `landed` judges it. "refused": the store refused the update itself, not its condition.
 */
async function updateFeedHead(
  ports: Pick<Ports, "db" | "tables">,
  tenantId: string,
  update: Required<Pick<UpdateCommandInput, "UpdateExpression" | "ConditionExpression" | "ExpressionAttributeValues">> &
    Pick<UpdateCommandInput, "ExpressionAttributeNames" | "ReturnValues">,
  landed: (item: Record<string, unknown>) => boolean,
): Promise<{ outcome: "landed" | "lost" | "refused"; item?: Record<string, unknown> }> {
  try {
    const { Attributes } = await ports.db.send(
      new UpdateCommand({ TableName: ports.tables.control, Key: feedHeadKey(tenantId), ...update }),
    );
    return { outcome: "landed", ...(Attributes ? { item: Attributes } : {}) };
  } catch (error) {
    const after = await ports.db
      .send(new GetCommand({ TableName: ports.tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }))
      .catch(() => undefined);
    if (after?.Item && landed(after.Item)) return { outcome: "landed", item: after.Item };
    // Unread, the head cannot say whether a refused condition hid this update landing: not "lost".
    return { outcome: error instanceof ConditionalCheckFailedException && after ? "lost" : "refused" };
  }
}

/**
 * `catchUpFeed` for the new audit records of a stream batch. Returns the sequence number of the first record of a
 * tenant still not covered (the stream gives the batch again from there), undefined when there is none.
 */
export async function catchUpFromStream(
  records: readonly OutboxStreamRecord[],
  ports: Pick<Ports, "db" | "tables" | "feedNotifier">,
  options?: CatchUpOptions,
): Promise<{ result: CatchUpResult; retryFrom?: string }> {
  const streamed = eventsOfStream(records);
  const result = await catchUpFeed(
    streamed.map(({ record }) => record),
    ports,
    options,
  );
  const retryFrom = streamed.find(({ record }) => result.uncovered.includes(record.tenantId))?.sequenceNumber;
  return { result, ...(retryFrom ? { retryFrom } : {}) };
}

/** Of `identifiers` (stream sequence numbers of `records`, or undefined), the one met first in the stream. */
export function earliestInStream(records: readonly OutboxStreamRecord[], identifiers: readonly (string | undefined)[]): string | undefined {
  const wanted = new Set(identifiers.filter((identifier): identifier is string => identifier !== undefined));
  return records.find((record) => wanted.has(record.dynamodb?.SequenceNumber ?? ""))?.dynamodb?.SequenceNumber;
}
