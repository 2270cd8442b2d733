/**
 * Durable outbound deliveries. Each (event, subscription) is one item of the automation
 * table, written before any attempt (its id is derived from both, so queueing twice queues
 * once). An attempt first takes a lease on the item (a conditional update), so one instance
 * at a time tries it and a process killed mid-attempt (kill -9, a Lambda timeout) leaves a
 * lease that expires: the item is tried again by whichever worker finds it due. Pending items
 * carry the sparse `byDue` index keys; delivered and failed ones drop them. A pending delivery is due in one of four
 * shards, by due time, or, once a run found its subscription failing (`perSubscription` failures), in that
 * subscription's own queue, which a marker item lists: a run then reads of a failing receiver's backlog what it
 * attempts, not all of it (review 68).
 *
 * Retries follow Standard Webhooks' suggested schedule stretched past 72 hours; `410 Gone`
 * disables the subscription. The item keeps its last attempts (the delivery log) and can be
 * replayed.
 *
 * A subscription is sent only the events its role may read (access/event-readers.ts): checked when a delivery is queued
 * and again at each attempt, since an operator's change makes an admin's subscription an operator's and a delivery
 * queued before it (a retry, a replay) is then not sent (review 87).
 */
import { createHash } from "node:crypto";
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { actingRole, mayReadEvent } from "../access/event-readers.ts";
import { isSimrootError, SimrootError } from "../error.ts";
import type { BusEnvelope } from "../event/envelope.ts";
import { matchesPattern } from "../event/pattern.ts";
import { pageInput, partitionPage, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";
import { queryAll } from "../store/query-all.ts";
import { verb } from "../verb.ts";
import { signedHeaders } from "./sign.ts";
import { changeWebhook, readWebhook, readWebhookToQueue, tenantWebhooks, webhookSecrets, type StoredWebhook } from "./subscription.ts";
import { postWebhook, type Resolve } from "./target.ts";

/** Delay before each retry, in seconds: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h, 14 h, 16 h (about 71.6 h after the first try), then a last one at 10 h. */
export const retryDelaysSeconds = [5, 300, 1800, 7200, 18_000, 36_000, 36_000, 50_400, 50_400, 57_600, 36_000] as const;
export const dueShards = 4;
const keptAttempts = 10;
const logRetentionSeconds = 30 * 24 * 60 * 60;

export const deliveryStatuses = ["pending", "delivered", "failed"] as const;
export const deliverySchema = z
  .object({
    id: z.string().meta({ description: "the `webhook-id` header: the same on every attempt and replay" }),
    webhookId: z.string(),
    eventId: z.string(),
    eventType: z.string(),
    status: z.enum(deliveryStatuses),
    attemptCount: z.number().int(),
    nextAt: z.string().optional(),
    reason: z.string().optional(),
    attempts: z.array(z.object({ at: z.string(), status: z.number().int().optional(), error: z.string().optional(), ms: z.number() })),
    createdAt: z.string(),
  })
  .meta({ id: "WebhookDelivery" });
export type Delivery = z.output<typeof deliverySchema>;
/** A delivery as its item holds it: the record, the body every attempt sends, and the lease of the attempt under way. */
type DeliveryItem = Delivery & {
  readonly tenantId: string;
  readonly body: string;
  readonly leaseUntil?: string;
  readonly gsi1pk?: string;
  /** The envelope beside the event, on a delivery its subscription's pattern queued (`enqueueDelivery`). */
  readonly matched?: Omit<BusEnvelope, "detail">;
};

const deliveryKey = (tenantId: string, webhookId: string, id: string) => ({ pk: `T#${tenantId}#delivery#${webhookId}`, sk: id });
const shardOf = (id: string) => createHash("sha256").update(id).digest()[0]! % dueShards;
const dueKeys = (id: string, at: string) => ({ gsi1pk: `due#${shardOf(id)}`, gsi1sk: `${at}|${id}` });
/** A subscription's own queue of due deliveries, in the same index: those a run moved out of the shards. */
const queuePartition = (tenantId: string, webhookId: string) => `due#T#${tenantId}#W#${webhookId}`;
const queueKeys = (tenantId: string, webhookId: string, id: string, at: string) => ({
  gsi1pk: queuePartition(tenantId, webhookId),
  gsi1sk: `${at}|${id}`,
});
/** The marker that lists a subscription's queue (in the index's `due#queues` partition) for as long as it may hold any. */
const queueMarkerKey = (tenantId: string, webhookId: string) => ({ pk: `T#${tenantId}#webhookqueue`, sk: webhookId });
const queueMarkers = "due#queues";
/**
 * How long a queue's marker outlives the last delivery put in its queue: an index read that soon after the write may
 * not show it yet (global secondary indexes are eventually consistent), and an empty read must not drop the marker.
 */
const queueSettleMs = 5 * 60_000;
/**
 * A delivery's id, the `webhook-id` header: the same for an event and a subscription on every attempt and replay. It
 * begins with the event id's ULID (its time, then what orders ids of one millisecond), so the delivery log, sorted by it,
 * is newest event first (before 2026-12-05 the id was the hash alone, and the log came in hash order: those keep it).
 */
export const messageId = (eventId: string, webhookId: string) => {
  const hash = createHash("sha256").update(`${eventId}|${webhookId}`).digest("base64url");
  const sortable = /^[a-z]+_([0-9A-HJKMNP-TV-Z]{26})$/.exec(eventId)?.[1];
  return sortable ? `msg_${sortable}${hash.slice(0, 10)}` : `msg_${hash.slice(0, 26)}`;
};

/** The body receivers get: Standard Webhooks' `{ type, timestamp, data }`, `data` being the simroot event. */
export const deliveryBody = (envelope: BusEnvelope) =>
  JSON.stringify({ type: envelope.detail.type, timestamp: envelope.detail.time, data: envelope.detail });
/** The event a delivery's body carries: what it tells of (access/event-readers.ts). */
const eventOf = (item: { readonly body: string }) => (JSON.parse(item.body) as { data: BusEnvelope["detail"] }).data;

/**
 * Queues the event for one subscription (idempotent); returns the delivery id, or undefined if the subscription is gone or
 * disabled, or its role may not read the event. `byPattern`: queued because the subscription's pattern matched the event
 * (not by a rule's `notify`, which names the subscription whatever it matches): each attempt matches it again.
 */
export async function enqueueDelivery(
  ports: Ports,
  tenantId: string,
  webhookId: string,
  envelope: BusEnvelope,
  byPattern = false,
): Promise<string | undefined> {
  const webhook = await readWebhookToQueue(ports, tenantId, webhookId);
  if (!webhook?.enabled || webhook.problem || !mayReadEvent(webhook.role, envelope.detail)) return undefined;
  const { detail: _detail, ...matched } = envelope;
  const id = messageId(envelope.detail.id, webhookId);
  const now = ports.now().toISOString();
  try {
    await ports.db.send(
      new PutCommand({
        TableName: ports.tables.automation,
        Item: {
          ...deliveryKey(tenantId, webhookId, id),
          ...dueKeys(id, now),
          id,
          tenantId,
          webhookId,
          eventId: envelope.detail.id,
          eventType: envelope.detail.type,
          body: deliveryBody(envelope),
          // The envelope beside the event (source, account, ...), which a pattern may match too.
          ...(byPattern ? { matched } : {}),
          status: "pending",
          attemptCount: 0,
          attempts: [],
          nextAt: now,
          createdAt: now,
        },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
  return id;
}

/**
 * The webhooks consumer: queues the event for every enabled subscription whose pattern matches and whose role may read it,
 * then tries each once.
 */
export async function dispatchToWebhooks(ports: Ports, envelope: BusEnvelope, options: AttemptOptions = {}) {
  const tenantId = envelope.detail.tenantId;
  const webhooks = (await tenantWebhooks(ports, tenantId)).filter(
    (webhook) => webhook.enabled && !webhook.problem && matchesPattern(webhook.pattern, envelope),
  );
  const queued: { webhookId: string; id: string }[] = [];
  for (const webhook of webhooks) {
    const id = await enqueueDelivery(ports, tenantId, webhook.id, envelope, true);
    if (id) queued.push({ webhookId: webhook.id, id });
  }
  // A subscription the worker found failing lately (it put a delivery in its queue in the last `failingForMs`) is not
  // attempted here: its receiver's wait would hold this invocation, and one tenant's dead receiver would hold one for
  // each of its events (review 108). Its delivery is due, for the worker, which shares its workers fairly. A queue listed
  // for longer (its retries hours apart) says nothing of the receiver now: attempted (review 114: a receiver back for
  // hours still had every event wait for the worker).
  const failing = queued.length > 0 ? await failingSubscriptions(ports, tenantId) : new Set<string>();
  await Promise.all(
    queued
      .filter(({ webhookId }) => !failing.has(webhookId))
      .map(({ webhookId, id }) =>
        attemptDelivery(ports, tenantId, webhookId, id, options).catch((error: unknown) => {
          // A subscription of a newer release's form (a deploy under way): its delivery is queued, and the worker
          // attempts it once its lease ends, with the newer code (review 145). The event is not failed for it.
          if (!isSimrootError(error) || error.code !== "store.newer_format") throw error;
        }),
      ),
  );
  return queued.map(({ id }) => id);
}

/**
 * Disables the subscription whose receiver answered 410 Gone at `at`, as it is now: a change that landed since the
 * attempt read it (a secret's rotation) made the disable's commit, conditional on the revision read, fail, and the
 * subscription stayed enabled while its delivery said it was disabled (review 130). Not when the change moved it to
 * another URL (that receiver said nothing), or disabled it already.
 */
async function disableGone(ports: Ports, tenantId: string, requestId: string, read: StoredWebhook, at: string) {
  const ctx = { tenantId, actor: "system:webhooks", requestId };
  let current: StoredWebhook | undefined = read;
  for (let attempt = 1; current?.enabled && current.url === read.url; attempt++) {
    try {
      await changeWebhook(
        ports,
        ctx,
        current,
        { enabled: false, disabledReason: `the receiver answered 410 Gone at ${at}` },
        "webhook.disabled",
      );
      return;
    } catch (error) {
      if (attempt >= 4) throw error;
      current = await readWebhook(ports, tenantId, read.id);
    }
  }
}

/** How long after the worker last put one of its deliveries in its queue a subscription counts as failing. */
export const failingForMs = 10 * 60 * 1000;

/** The tenant's subscriptions whose queues the worker added to in the last `failingForMs`, as last read. */
async function failingSubscriptions(ports: Ports, tenantId: string): Promise<Set<string>> {
  const since = ports.now().getTime() - failingForMs;
  const markers = await queryAll(ports.db, {
    TableName: ports.tables.automation,
    KeyConditionExpression: "pk = :pk",
    ExpressionAttributeValues: { ":pk": queueMarkerKey(tenantId, "").pk },
    ProjectionExpression: "sk, queuedAt",
  });
  return new Set(markers.filter((item) => Date.parse(String(item.queuedAt)) > since).map((item) => String(item.sk)));
}

export interface AttemptOptions {
  /** How long an attempt holds its lease (a killed attempt is retried after it). */
  readonly leaseMs?: number;
  /** How long to wait for the receiver. */
  readonly timeoutMs?: number;
  /** How a receiver's name resolves (the system resolver by default). */
  readonly resolve?: Resolve;
}

/** One attempt at a due delivery, if no one else holds it. Returns the status it left. */
export async function attemptDelivery(ports: Ports, tenantId: string, webhookId: string, id: string, options: AttemptOptions = {}) {
  const now = ports.now();
  const key = deliveryKey(tenantId, webhookId, id);
  let item: DeliveryItem;
  try {
    const claimed = await ports.db.send(
      new UpdateCommand({
        TableName: ports.tables.automation,
        Key: key,
        UpdateExpression: "SET leaseUntil = :lease",
        ConditionExpression: "#status = :pending AND nextAt <= :now AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":lease": new Date(now.getTime() + (options.leaseMs ?? 30_000)).toISOString(),
          ":pending": "pending",
          ":now": now.toISOString(),
        },
        ReturnValues: "ALL_NEW",
      }),
    );
    item = claimed.Attributes! as DeliveryItem;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return "busy";
    throw error;
  }
  const webhook = await readWebhook(ports, tenantId, webhookId);
  if (!webhook?.enabled)
    return settle(ports, key, item, {
      status: "failed",
      reason: webhook ? "the subscription is disabled" : "the subscription was removed",
    });
  if (!mayReadEvent(webhook.role, eventOf(item)))
    return settle(ports, key, item, { status: "failed", reason: `the subscription's role (${webhook.role}) may not read this event` });
  // As its role, what the subscription asks for is the one it holds now (review 130: a retry of an event the integrator
  // had unsubscribed from since went to its new URL, for up to 82 hours of retries). A rule's `notify` asked for its own.
  if (webhook.problem) return settle(ports, key, item, { status: "failed", reason: `the subscription does not run: ${webhook.problem}` });
  if (item.matched && !matchesPattern(webhook.pattern, { ...item.matched, detail: eventOf(item) }))
    return settle(ports, key, item, { status: "failed", reason: "the subscription's pattern no longer matches this event" });

  const started = performance.now();
  const attemptAt = ports.now();
  let status: number | undefined;
  let error: string | undefined;
  try {
    const secrets = await webhookSecrets(ports, tenantId, webhook, attemptAt);
    const headers = signedHeaders(webhook.signing, secrets, id, Math.floor(attemptAt.getTime() / 1000), item.body);
    status = await postWebhook(
      webhook.url,
      { headers: { ...headers, "user-agent": "simroot-webhooks/1" }, body: item.body, timeoutMs: options.timeoutMs ?? 15_000 },
      ports.webhookTargets ?? "public",
      options.resolve,
    );
  } catch (failure) {
    error = (failure as Error).name === "TimeoutError" ? "timed out" : String((failure as Error).message).slice(0, 200);
  }
  const attempt = {
    at: attemptAt.toISOString(),
    ...(status !== undefined ? { status } : {}),
    ...(error ? { error } : {}),
    ms: Math.round(performance.now() - started),
  };
  if (status !== undefined && status >= 200 && status < 300) return settle(ports, key, item, { status: "delivered", attempt });
  if (status === 410) {
    await disableGone(ports, tenantId, id, webhook, attempt.at);
    return settle(ports, key, item, { status: "failed", reason: "410 Gone: the subscription is disabled", attempt });
  }
  const delay = retryDelaysSeconds[item.attemptCount as number];
  if (delay === undefined) return settle(ports, key, item, { status: "failed", reason: "retries exhausted", attempt });
  const jitter = 1 + (Math.random() - 0.5) * 0.2;
  return settle(ports, key, item, {
    status: "pending",
    attempt,
    nextAt: new Date(attemptAt.getTime() + delay * 1000 * jitter).toISOString(),
  });
}

async function settle(
  ports: Ports,
  key: Record<string, string>,
  item: DeliveryItem,
  next: { status: Delivery["status"]; reason?: string; attempt?: Delivery["attempts"][number]; nextAt?: string },
) {
  const attempts = next.attempt ? [...(item.attempts ?? []), next.attempt].slice(-keptAttempts) : (item.attempts ?? []);
  const pending = next.status === "pending";
  // A delivery taken from its subscription's queue waits there for its next attempt, and the queue's marker is kept.
  // If its marker cannot be written, it waits in its shard instead: the attempt made is recorded either way (review 72:
  // a refused marker write lost the attempt's outcome, and its retry came when the lease ran out, uncounted).
  const queued =
    pending &&
    item.gsi1pk === queuePartition(item.tenantId, item.webhookId) &&
    (await markQueue(ports, item.tenantId, item.webhookId).then(
      () => true,
      (error: unknown) => {
        console.error(
          JSON.stringify({
            level: "error",
            component: "webhooks",
            message: "listing a subscription's queue failed",
            id: item.id,
            error: String(error),
          }),
        );
        return false;
      },
    ));
  const nextKeys = pending
    ? queued
      ? queueKeys(item.tenantId, item.webhookId, item.id, next.nextAt!)
      : dueKeys(item.id, next.nextAt!)
    : {};
  await ports.db
    .send(
      new UpdateCommand({
        TableName: ports.tables.automation,
        Key: key,
        UpdateExpression: pending
          ? "SET #status = :status, attempts = :attempts, attemptCount = :count, nextAt = :next, gsi1pk = :gpk, gsi1sk = :gsk REMOVE leaseUntil"
          : `SET #status = :status, attempts = :attempts, attemptCount = :count, expiresAt = :expires${next.reason ? ", reason = :reason" : ""} REMOVE leaseUntil, gsi1pk, gsi1sk, nextAt`,
        ConditionExpression: "leaseUntil = :lease",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":status": next.status,
          ":attempts": attempts,
          ":count": (item.attemptCount as number) + (next.attempt ? 1 : 0),
          ":lease": item.leaseUntil,
          ...(pending
            ? {
                ":next": next.nextAt,
                ...Object.fromEntries(Object.entries(nextKeys).map(([k, v]) => [k === "gsi1pk" ? ":gpk" : ":gsk", v])),
              }
            : {}),
          ...(!pending ? { ":expires": Math.floor(ports.now().getTime() / 1000) + logRetentionSeconds } : {}),
          ...(next.reason ? { ":reason": next.reason } : {}),
        },
      }),
    )
    .catch((error: unknown) => {
      // Our lease ran out and another worker took the item: its outcome stands.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    });
  return next.status;
}

export interface WorkerOptions extends AttemptOptions {
  /** Due deliveries read per shard and page. */
  readonly limit?: number;
  /** How long the run may take (a Lambda's remaining time, less a margin): it starts no attempt that could outlast it. */
  readonly budgetMs?: number;
  /** Attempts at once. */
  readonly concurrency?: number;
  /** At most this many failed attempts per subscription in a run: one receiver's backlog does not hold back the others. */
  readonly perSubscription?: number;
}

/** Lists the subscription's queue under its marker, as of now: written before a delivery is put in the queue. */
async function markQueue(ports: Ports, tenantId: string, webhookId: string) {
  await ports.db.send(new UpdateCommand(markQueueUpdate(ports, tenantId, webhookId)));
}
function markQueueUpdate(ports: Ports, tenantId: string, webhookId: string) {
  return {
    TableName: ports.tables.automation,
    Key: queueMarkerKey(tenantId, webhookId),
    UpdateExpression: "SET gsi1pk = :markers, gsi1sk = :sk, tenantId = :tenant, webhookId = :webhook, queuedAt = :now",
    ExpressionAttributeValues: {
      ":markers": queueMarkers,
      ":sk": `${tenantId}|${webhookId}`,
      ":tenant": tenantId,
      ":webhook": webhookId,
      ":now": ports.now().toISOString(),
    },
  };
}

/**
 * Moves a due delivery of a failing subscription from its shard to the subscription's queue, unless an attempt holds
 * it or it moved since it was read (review 72: a stale read placed it in the queue by a due time it no longer had).
 * The marker is written in the same transaction: however long the process stalls, no delivery enters a queue whose
 * marker a run may have dropped meanwhile (review 72).
 */
async function park(ports: Ports, item: Record<string, unknown>) {
  const now = ports.now().toISOString();
  const tenantId = String(item.tenantId);
  const webhookId = String(item.webhookId);
  const to = queueKeys(tenantId, webhookId, String(item.id), String(item.nextAt));
  await ports.db
    .send(
      new TransactWriteCommand({
        TransactItems: [
          { Update: markQueueUpdate(ports, tenantId, webhookId) },
          {
            Update: {
              TableName: ports.tables.automation,
              Key: deliveryKey(tenantId, webhookId, String(item.id)),
              UpdateExpression: "SET gsi1pk = :queue, gsi1sk = :sk",
              ConditionExpression:
                "#status = :pending AND gsi1pk = :shard AND gsi1sk = :read AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)",
              ExpressionAttributeNames: { "#status": "status" },
              ExpressionAttributeValues: {
                ":queue": to.gsi1pk,
                ":sk": to.gsi1sk,
                ":pending": "pending",
                ":shard": item.gsi1pk,
                ":read": item.gsi1sk,
                ":now": now,
              },
            },
          },
        ],
      }),
    )
    .catch((error: unknown) => {
      // Attempted, settled or moved meanwhile (or written beside this): where it is now stands.
      if (!(error instanceof TransactionCanceledException)) throw error;
    });
}

/** Drops the marker of a queue a read (made after the marker's) found empty, once nothing was put in it for longer than the index may lag. */
async function dropQueue(ports: Ports, marker: Record<string, unknown>) {
  if (Date.parse(String(marker.queuedAt)) > ports.now().getTime() - queueSettleMs) return;
  await ports.db
    .send(
      new DeleteCommand({
        TableName: ports.tables.automation,
        Key: queueMarkerKey(String(marker.tenantId), String(marker.webhookId)),
        ConditionExpression: "queuedAt = :read",
        ExpressionAttributeValues: { ":read": marker.queuedAt },
      }),
    )
    .catch((error: unknown) => {
      // A delivery was put in the queue since the marker was read: it stays listed.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    });
}

/** Every marker of a subscription's queue (a failing subscription each: few). */
async function queuesListed(ports: Ports) {
  return queryAll(ports.db, {
    TableName: ports.tables.automation,
    IndexName: "byDue",
    KeyConditionExpression: "gsi1pk = :markers",
    ExpressionAttributeValues: { ":markers": queueMarkers },
  });
}

/** Where the worker reads due deliveries: a shard, or a subscription's queue (with its marker). */
interface DueSource {
  readonly partition: string;
  readonly marker?: Record<string, unknown>;
  /** The queue's subscription (`tenant|webhook`). */
  readonly subscription?: string;
  /** Where its next page starts; `null` once it is read to its end. */
  start: Record<string, unknown> | undefined | null;
  /** What was read of it and not taken yet. */
  buffer: Record<string, unknown>[];
  reading: boolean;
}

const subscriptionOf = (item: Record<string, unknown>) => `${item.tenantId}|${item.webhookId}`;
function shuffled<T>(items: T[]) {
  for (let n = items.length - 1; n > 0; n--) {
    const m = Math.floor(Math.random() * (n + 1));
    [items[n], items[m]] = [items[m]!, items[n]!];
  }
  return items;
}

/**
 * The worker: attempts the deliveries due now, reading every shard of the `byDue` index and every subscription's queue
 * (review 67: one page of 50 per shard, one shard after the other, attempted 200 deliveries a minute for the whole
 * deployment, behind one tenant's backlog, and four receivers that never answer took 60 s, the worker's Lambda timeout).
 * Its workers take due deliveries from the sources in turn (the queues in an order drawn each run), and a source's
 * next page is read when what was read of it is taken, by the worker that wants it (review 72: a page of every queue,
 * then the next of every source once the whole round had settled, let the queues listed first take every run, one
 * hanging receiver's page hold back the shards' next, and a run read 25 deliveries of each failing subscription at
 * once, whatever it could attempt). A subscription not known to answer in the run has at most a quarter of the
 * workers at once (review 72: two hanging receivers took them all), and so have all such subscriptions of one tenant
 * together (review 108: four of one tenant took them all). An attempt starts only with its receiver's whole
 * wait left in the budget (one cut short counted as a failed attempt, spending a retry of a delivery the receiver may
 * have taken: review 68), and a subscription whose attempts fail `perSubscription` times in a run gets no more in it
 * (one that succeeds keeps going). What the run then meets of that subscription in the shards is moved to its own
 * queue, of which later runs read only as many as they may attempt: the shards had been read whole each run, a failing
 * receiver's whole backlog to attempt 25 of it (review 68). An attempt that throws (the store refusing), or a read
 * refused, is logged and leaves its deliveries due; the run returns once every attempt it started has settled.
 */
/**
 * How many pages of a shard a run holds at most while none of its deliveries may be attempted yet, and how many bytes of
 * bodies (a body may be up to 256 KB: 200 of them would be 50 MB a shard).
 */
const readAhead = 4;
const readAheadBytes = 8 * 2 ** 20;
const bufferedBytes = (source: { readonly buffer: readonly Record<string, unknown>[] }) =>
  source.buffer.reduce((sum, item) => sum + (typeof item.body === "string" ? item.body.length : 0), 0);

export async function deliverDue(ports: Ports, options: WorkerOptions = {}) {
  const deadline = Date.now() + (options.budgetMs ?? 40_000);
  const timeoutMs = options.timeoutMs ?? 15_000;
  const concurrency = options.concurrency ?? 16;
  const perSubscription = options.perSubscription ?? 25;
  const limit = options.limit ?? 50;
  const now = ports.now().toISOString();
  const failures = new Map<string, number>();
  const answered = new Set<string>();
  const inFlight = new Map<string, number>();
  /** Attempts in flight to subscriptions not known to answer, by tenant. */
  const unprovenInFlight = new Map<string, number>();
  const failing = (subscription: string) => (failures.get(subscription) ?? 0) >= perSubscription;
  const unproven = Math.max(1, Math.floor(concurrency / 4));
  const proven = (subscription: string) => answered.has(subscription) && !failures.get(subscription);
  const tenantOf = (subscription: string) => subscription.slice(0, subscription.indexOf("|"));
  /** Subscriptions attempted in this run; a tenant's attempts let past its cap to try one of the others (a probe). */
  const tried = new Set<string>();
  const probing = new Map<string, number>();
  // A subscription not known to answer has at most a quarter of the workers, and so have all of its tenant's together
  // (review 108: a tenant with four receivers that never answer took every worker for a run). Past that, one attempt of
  // the tenant at a time may try a subscription not tried yet in the run (review 114: one hanging receiver held its
  // tenant's quarter, and the tenant's receiver that answers got nothing all run).
  const probe = (subscription: string) =>
    !proven(subscription) &&
    (unprovenInFlight.get(tenantOf(subscription)) ?? 0) >= unproven &&
    !tried.has(subscription) &&
    (probing.get(tenantOf(subscription)) ?? 0) === 0;
  const atCap = (subscription: string) =>
    proven(subscription)
      ? (inFlight.get(subscription) ?? 0) >= concurrency
      : (inFlight.get(subscription) ?? 0) >= unproven ||
        ((unprovenInFlight.get(tenantOf(subscription)) ?? 0) >= unproven && !probe(subscription));
  // The queues (failing subscriptions) have at most half the workers while the shards have anything left.
  let fromQueues = 0;
  const queuesAtCap = () =>
    fromQueues >= Math.ceil(concurrency / 2) &&
    sources.some((source) => !source.marker && (source.buffer.length > 0 || source.start !== null || source.reading));
  const log = (message: string, id: unknown, error: unknown) =>
    console.error(JSON.stringify({ level: "error", component: "webhooks", message, id, error: String(error) }));
  const markers = await queuesListed(ports).catch((error: unknown) => {
    log("listing the subscriptions' queues failed", queueMarkers, error);
    return [];
  });
  const sources: DueSource[] = [
    ...Array.from({ length: dueShards }, (_, shard) => ({ partition: `due#${shard}`, start: undefined, buffer: [], reading: false })),
    ...shuffled(markers).map((marker) => ({
      partition: queuePartition(String(marker.tenantId), String(marker.webhookId)),
      marker,
      subscription: subscriptionOf(marker),
      start: undefined,
      buffer: [],
      reading: false,
    })),
  ];
  let attempted = 0;
  let turn = 0;
  // An attempt is started only with its receiver's whole wait, and a second more, left.
  const timeForOne = () => deadline - Date.now() - 1_000 >= timeoutMs;
  let wake = () => {};
  let changed = new Promise<void>((resolve) => (wake = resolve));
  const signal = () => {
    const woken = wake;
    changed = new Promise<void>((resolve) => (wake = resolve));
    woken();
  };

  async function read(source: DueSource) {
    const query = (condition: string, values: Record<string, unknown>, pageLimit: number) =>
      ports.db.send(
        new QueryCommand({
          TableName: ports.tables.automation,
          IndexName: "byDue",
          KeyConditionExpression: condition,
          ExpressionAttributeValues: { ":partition": source.partition, ...values },
          Limit: pageLimit,
          ExclusiveStartKey: source.start ?? undefined,
        }),
      );
    try {
      if (source.marker && source.start === undefined) {
        // A queue's first read is its first delivery, due or not: one query tells a queue with nothing due from an
        // empty one, whose marker goes (review 72: two queries and a read of a delivery, every run, for every marker).
        const page = await query("gsi1pk = :partition", {}, 1);
        const [first] = page.Items ?? [];
        if (first !== undefined && String(first.gsi1sk) <= `${now}|~`) {
          source.buffer.push(first);
          source.start = page.LastEvaluatedKey ?? null;
        } else source.start = null;
        if (first === undefined)
          await dropQueue(ports, source.marker).catch((error: unknown) => log("dropping an empty queue failed", source.partition, error));
        return;
      }
      const remaining = source.subscription ? perSubscription - (failures.get(source.subscription) ?? 0) : limit;
      const page = await query("gsi1pk = :partition AND gsi1sk <= :now", { ":now": `${now}|~` }, Math.max(1, Math.min(limit, remaining)));
      source.buffer.push(...(page.Items ?? []));
      source.start = page.LastEvaluatedKey ?? null;
    } catch (error) {
      // This source waits for the next run; the others go on (review 72: one refused read ended the run).
      log("reading due deliveries failed", source.partition, error);
      source.start = null;
    } finally {
      source.reading = false;
      signal();
    }
  }

  /** The next thing a worker does: a delivery to attempt (or park), a source to read, wait for one, or nothing left. */
  function choose(): { item: Record<string, unknown> } | { read: DueSource } | "wait" | "done" {
    let wait = false;
    for (let k = 0; k < sources.length; k++) {
      const n = (turn + k) % sources.length;
      const source = sources[n]!;
      // A queue is read no further than its subscription may still fail in this run.
      if (source.subscription && failing(source.subscription)) {
        source.start = null;
        source.buffer = [];
        continue;
      }
      const index =
        source.marker && queuesAtCap()
          ? -1
          : source.buffer.findIndex((item) => failing(subscriptionOf(item)) || !atCap(subscriptionOf(item)));
      if (index >= 0) {
        turn = n + 1;
        return { item: source.buffer.splice(index, 1)[0]! };
      }
      // A shard whose every buffered delivery waits for its subscription's cap reads on, up to `readAhead` pages held
      // (review 114: a page of one tenant's hanging backlog held back every later tenant's deliveries for the run).
      const readOn =
        source.buffer.length === 0 ||
        (!source.marker && source.buffer.length < readAhead * limit && bufferedBytes(source) < readAheadBytes);
      if (!source.reading && source.start !== null && readOn) {
        source.reading = true;
        turn = n + 1;
        return { read: source };
      }
      if (source.buffer.length > 0 || source.reading) wait = true;
    }
    return wait ? "wait" : "done";
  }

  async function attempt(item: Record<string, unknown>) {
    const subscription = subscriptionOf(item);
    if (failing(subscription)) {
      if (item.gsi1pk === queuePartition(String(item.tenantId), String(item.webhookId))) return;
      await park(ports, item).catch((error: unknown) => log("moving a delivery to its subscription's queue failed", item.id, error));
      return;
    }
    let status: string;
    const queued = item.gsi1pk === queuePartition(String(item.tenantId), String(item.webhookId));
    const probed = probe(subscription) ? tenantOf(subscription) : undefined;
    const tenant = proven(subscription) || probed !== undefined ? undefined : tenantOf(subscription);
    inFlight.set(subscription, (inFlight.get(subscription) ?? 0) + 1);
    tried.add(subscription);
    if (tenant !== undefined) unprovenInFlight.set(tenant, (unprovenInFlight.get(tenant) ?? 0) + 1);
    if (probed !== undefined) probing.set(probed, (probing.get(probed) ?? 0) + 1);
    if (queued) fromQueues += 1;
    try {
      status = await attemptDelivery(ports, String(item.tenantId), String(item.webhookId), String(item.id), { ...options, timeoutMs });
    } catch (error) {
      log("attempting a delivery failed", item.id, error);
      status = "error";
    } finally {
      inFlight.set(subscription, inFlight.get(subscription)! - 1);
      if (tenant !== undefined) unprovenInFlight.set(tenant, unprovenInFlight.get(tenant)! - 1);
      if (probed !== undefined) probing.set(probed, probing.get(probed)! - 1);
      if (queued) fromQueues -= 1;
    }
    if (status !== "busy") attempted += 1;
    if (status === "delivered") answered.add(subscription);
    if (status !== "delivered" && status !== "busy") failures.set(subscription, (failures.get(subscription) ?? 0) + 1);
  }

  async function work() {
    while (timeForOne()) {
      const next = choose();
      if (next === "done") return;
      if (next === "wait") await changed;
      else if ("read" in next) await read(next.read);
      else {
        await attempt(next.item);
        signal();
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, work));
  return attempted;
}

/**
 * A page of a subscription's delivery log, newest first. A reader is shown only the deliveries of events its role may
 * read (a key with no role recorded, an operator's): an admin's subscription's log named to operators and viewers each
 * `key.created`'s event id and time (review 87). The page reads on past the deliveries it may not show until it holds
 * `limit` or the log ends, and its cursor is the key of the last delivery shown: the store's last key read, when the
 * page ended on a hidden delivery, handed its id (`msg_<event id>`) to the reader (review 92).
 */
export const listDeliveries = verb(pageInput.extend({ webhookId: z.string() }), async (ports, ctx, input): Promise<Page<Delivery>> => {
  if (!(await readWebhook(ports, ctx.tenantId, input.webhookId)))
    throw new SimrootError("webhook.not_found", "not_found", `No webhook ${input.webhookId}`);
  return partitionPage(
    ports,
    ports.tables.automation,
    deliveryKey(ctx.tenantId, input.webhookId, "").pk,
    input,
    (item) => deliverySchema.parse(item),
    (item) => mayReadEvent(actingRole(ctx), eventOf(item as DeliveryItem)),
    { newestFirst: true, eventual: true },
  );
});

/** Sends a delivery again (whatever its status): pending, due now, with the same `webhook-id`. */
export const replayDelivery = verb(z.object({ webhookId: z.string(), id: z.string() }), async (ports, ctx, input): Promise<Delivery> => {
  const webhook = await readWebhook(ports, ctx.tenantId, input.webhookId);
  if (!webhook) throw new SimrootError("webhook.not_found", "not_found", `No webhook ${input.webhookId}`);
  // Due again on a disabled subscription, the delivery would only fail again ("the subscription is disabled").
  if (!webhook.enabled) {
    throw new SimrootError("webhook.disabled", "conflict", `Webhook ${input.webhookId} is disabled: enable it, then replay`, {
      detail: { ...(webhook.disabledReason ? { disabledReason: webhook.disabledReason } : {}) },
    });
  }
  // A delivery of an event the caller's role may not read is one it has not seen (review 92: an operator replayed an
  // admin's subscription's `key.created` and was answered its type and id).
  const { Item: stored } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.automation, Key: deliveryKey(ctx.tenantId, input.webhookId, input.id) }),
  );
  if (!stored || !mayReadEvent(actingRole(ctx), eventOf(stored as DeliveryItem)))
    throw new SimrootError("delivery.not_found", "not_found", `No delivery ${input.id}`);
  const now = ports.now().toISOString();
  try {
    const { Attributes } = await ports.db.send(
      new UpdateCommand({
        TableName: ports.tables.automation,
        Key: deliveryKey(ctx.tenantId, input.webhookId, input.id),
        UpdateExpression:
          "SET #status = :pending, nextAt = :now, gsi1pk = :gpk, gsi1sk = :gsk, attemptCount = :zero REMOVE reason, leaseUntil, expiresAt",
        // Not while an attempt holds it: removing its lease let a second attempt run beside it, and the first one's
        // outcome was dropped (review 72).
        ConditionExpression: "attribute_exists(pk) AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":pending": "pending",
          ":now": now,
          ":gpk": dueKeys(input.id, now).gsi1pk,
          ":gsk": dueKeys(input.id, now).gsi1sk,
          ":zero": 0,
        },
        ReturnValues: "ALL_NEW",
      }),
    );
    return deliverySchema.parse(Attributes);
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    const { Item } = await ports.db.send(
      new GetCommand({ TableName: ports.tables.automation, Key: deliveryKey(ctx.tenantId, input.webhookId, input.id) }),
    );
    if (Item)
      throw new SimrootError(
        "delivery.in_flight",
        "conflict",
        `Delivery ${input.id} is being attempted: replay it once the attempt is over`,
        {
          detail: { leaseUntil: Item.leaseUntil },
        },
      );
    throw new SimrootError("delivery.not_found", "not_found", `No delivery ${input.id}`);
  }
});
