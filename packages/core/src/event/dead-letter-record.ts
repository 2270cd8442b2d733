/**
 * A dead letter's record (see dead-letters.ts): written by the local bus and by the AWS drain
 * function, which bundle only this module (no verbs, no ledger), and by the outbox for an event
 * the bus itself refused for good (`recordRefusedEvent`).
 */
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { typesToldBy } from "../access/event-readers.ts";
import { applierQueue } from "../platform/limits.ts";
import { isQueued, type RuleName } from "../platform/rules.ts";
import type { AuditRecord } from "../ledger/audit-record.ts";
import type { Ports } from "../ports.ts";
import type { BusEnvelope } from "./envelope.ts";

/** How long a dead letter is kept (SQS's maximum message retention). */
export const deadLetterRetentionSeconds = 14 * 24 * 60 * 60;

export const busDeadLetterSchema = z
  .object({
    id: z.string().meta({ description: "`<event id>~<rule>`: one event may fail at several rules" }),
    rule: z.string().meta({
      description: "the rule (consumer) that did not take the event; `outbox`: the bus itself refused it, so no rule received it",
    }),
    eventId: z.string(),
    eventType: z.string(),
    subject: z.string(),
    reason: z.string(),
    attempts: z.number().int().optional(),
    record: z.object({ shard: z.number().int(), seq: z.number().int() }).optional().meta({
      description:
        "where the audit trail keeps the change whose event the bus refused or held (`outbox` letters: `GET /v1/audit?shard=`); a refused one cannot be redriven",
    }),
    held: z
      .boolean()
      .optional()
      .meta({
        description:
          "`outbox` letters: the bus did not take the event for 12 hours after its commit (down, throttling, a permission missing), " +
          "so the outbox went on without it before the stream dropped it; a redrive publishes it from the audit trail, with its own id",
      }),
    deadAt: z.string(),
    expiresAt: z.number().int().meta({ description: "when it is dropped unless redriven first (epoch seconds)" }),
  })
  .meta({ id: "BusDeadLetter" });
export type BusDeadLetter = z.output<typeof busDeadLetterSchema>;

/** Hands an event back to one rule's consumer (and only that one). */
export type Redeliver = (rule: string, envelope: BusEnvelope) => Promise<void>;

export const deadLetterPartition = (tenantId: string) => `T#${tenantId}#deadletter`;
const letterId = (eventId: string, rule: string) => `${eventId}~${rule}`;

/** The `rule` of a dead letter the bus itself refused: the outbox could not publish its record's event, and went on. */
export const outboxDeadLetterRule = "outbox";

/** Records a delivery the bus gave up on (a retried record writes the same item again). */
export async function recordDeadLetter(
  ports: Pick<Ports, "db" | "tables" | "now">,
  letter: { readonly rule: string; readonly reason: string; readonly attempts?: number; readonly envelope: BusEnvelope },
): Promise<void> {
  const event = letter.envelope.detail;
  const now = ports.now();
  const item: BusDeadLetter & { envelope: BusEnvelope } = {
    id: letterId(event.id, letter.rule),
    rule: letter.rule,
    eventId: event.id,
    eventType: event.type,
    subject: event.subject,
    reason: letter.reason.slice(0, 1000),
    ...(letter.attempts === undefined ? {} : { attempts: letter.attempts }),
    deadAt: now.toISOString(),
    expiresAt: Math.floor(now.getTime() / 1000) + deadLetterRetentionSeconds,
    envelope: letter.envelope,
  };
  await ports.db.send(
    new PutCommand({ TableName: ports.tables.control, Item: { pk: deadLetterPartition(event.tenantId), sk: item.id, ...item } }),
  );
}

/**
 * Records a committed event the bus refused for good (the outbox, core outbox/outbox.ts): with its record's place in
 * the audit trail, which keeps the event, and the refusal; not with the event itself (an entry too large for the bus
 * may be too large for an item too). Resolves true when it wrote the letter, false when the letter was there already:
 * the outbox given the record again (a stream batch is given at least once) keeps the first letter, and counts the
 * refusal once (review 74).
 */
export async function recordRefusedEvent(
  ports: Pick<Ports, "db" | "tables"> & Partial<Pick<Ports, "now">>,
  letter: {
    readonly record: Pick<AuditRecord, "tenantId" | "eventId" | "action" | "subject" | "shard" | "seq"> & {
      readonly data?: unknown;
      readonly hash?: string;
    };
    readonly reason: string;
    /** Not refused: held by the outbox, the bus down too long (outbox/outbox.ts `outboxHoldAfterSeconds`). */
    readonly held?: boolean;
  },
): Promise<boolean> {
  const { record } = letter;
  const now = ports.now?.() ?? new Date();
  const item: BusDeadLetter & { toldTypes: string[]; recordHash?: string } = {
    id: letterId(record.eventId, outboxDeadLetterRule),
    rule: outboxDeadLetterRule,
    eventId: record.eventId,
    eventType: record.action,
    subject: record.subject,
    reason: letter.reason.slice(0, 1000),
    record: { shard: record.shard, seq: record.seq },
    // A held one is published again from its record: the record's hash, so that one changed since is not (review 104).
    ...(letter.held ? { held: true, ...(record.hash ? { recordHash: record.hash } : {}) } : {}),
    // What the event tells of (its type, and the type of an event it records something about): kept without the event,
    // so that a letter is shown only to a role that may read all of them (review 94).
    toldTypes: typesToldBy({ type: record.action, data: record.data }),
    deadAt: now.toISOString(),
    expiresAt: Math.floor(now.getTime() / 1000) + deadLetterRetentionSeconds,
  };
  try {
    await ports.db.send(
      new PutCommand({
        TableName: ports.tables.control,
        Item: { pk: deadLetterPartition(record.tenantId), sk: item.id, ...item },
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** What a rule's SQS dead-letter queue holds, read back: the event, why it failed, and how often it was tried. */
export interface QueuedDeadLetter {
  readonly reason: string;
  readonly attempts?: number;
  readonly envelope: BusEnvelope;
}

const isEnvelope = (value: unknown): value is BusEnvelope =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as BusEnvelope).detail === "object" &&
  typeof (value as BusEnvelope).detail?.tenantId === "string" &&
  typeof (value as BusEnvelope).detail?.id === "string";

/**
 * A dead letter from its SQS message: Lambda's on-failure destination sends an invocation
 * record (`requestPayload` is the event, `responsePayload` the error); EventBridge sends the
 * event itself, with `ERROR_CODE`/`ERROR_MESSAGE`/`RETRY_ATTEMPTS` message attributes; the applier's queue
 * (platform/limits.ts `applierQueue`, of the `queued` rule) moves the event itself, with no attributes, once it was
 * received as often as it allows (the consumer's log says why). Undefined for a message that is neither (it is left to the queue's own retention).
 */
export function deadLetterOfMessage(
  body: string,
  attributes: Readonly<Record<string, { readonly stringValue?: string | undefined }>> = {},
  rule?: RuleName,
): QueuedDeadLetter | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const record = parsed as {
    requestPayload?: unknown;
    requestContext?: { condition?: string; approximateInvokeCount?: number };
    responsePayload?: { errorType?: string; errorMessage?: string };
  };
  if (record.requestContext && isEnvelope(record.requestPayload)) {
    const error = record.responsePayload?.errorMessage ?? record.requestContext.condition ?? "failed";
    return {
      reason: `${record.responsePayload?.errorType ?? record.requestContext.condition ?? "Error"}: ${error}`,
      ...(typeof record.requestContext.approximateInvokeCount === "number"
        ? { attempts: record.requestContext.approximateInvokeCount }
        : {}),
      envelope: record.requestPayload,
    };
  }
  if (isEnvelope(parsed) && attributes.ERROR_CODE === undefined && rule !== undefined && isQueued(rule)) {
    return {
      reason: `ConsumerFailed: the applier's queue gave up after ${applierQueue.maxReceiveCount} receives (failed, unfinished or throttled)`,
      attempts: applierQueue.maxReceiveCount,
      envelope: parsed,
    };
  }
  if (isEnvelope(parsed)) {
    const attempts = Number(attributes.RETRY_ATTEMPTS?.stringValue);
    return {
      reason: `${attributes.ERROR_CODE?.stringValue ?? "EventBridgeDeliveryFailed"}: ${attributes.ERROR_MESSAGE?.stringValue ?? "not delivered"}`,
      ...(Number.isFinite(attempts) ? { attempts } : {}),
      envelope: parsed,
    };
  }
  return undefined;
}
