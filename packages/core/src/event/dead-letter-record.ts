/**
 * A dead letter's record (see dead-letters.ts): written by the local bus and by the AWS drain
 * function, which bundle only this module (no verbs, no ledger).
 */
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { applierQueue } from "../platform/limits.ts";
import { isQueued, type RuleName } from "../platform/rules.ts";
import type { Ports } from "../ports.ts";
import type { BusEnvelope } from "./envelope.ts";

/** How long a dead letter is kept (SQS's maximum message retention). */
export const deadLetterRetentionSeconds = 14 * 24 * 60 * 60;

export const busDeadLetterSchema = z
  .object({
    id: z.string().meta({ description: "`<event id>~<rule>`: one event may fail at several rules" }),
    rule: z.string().meta({ description: "the rule (consumer) that did not take the event" }),
    eventId: z.string(),
    eventType: z.string(),
    subject: z.string(),
    reason: z.string(),
    attempts: z.number().int().optional(),
    deadAt: z.string(),
    expiresAt: z.number().int().meta({ description: "when it is dropped unless redriven first (epoch seconds)" }),
  })
  .meta({ id: "BusDeadLetter" });
export type BusDeadLetter = z.output<typeof busDeadLetterSchema>;

/** Hands an event back to one rule's consumer (and only that one). */
export type Redeliver = (rule: string, envelope: BusEnvelope) => Promise<void>;

export const deadLetterPartition = (tenantId: string) => `T#${tenantId}#deadletter`;
const letterId = (eventId: string, rule: string) => `${eventId}~${rule}`;

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
