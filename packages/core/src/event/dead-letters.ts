/**
 * Deliveries the bus gave up on: a consumer kept failing (or refused the event), so the event
 * did not reach that one rule's target. Each is kept per tenant for 14 days (SQS's longest
 * retention), listed at `/v1/bus/dead-letters`, and handed back to its consumer on request
 * (redrive, audited as `bus.dead_letter_redriven`). The same records in both runtimes: locally the bus records a delivery it
 * dead-letters; in AWS the drain function (`functions/src/dead-letter-drain.ts`) records what
 * reaches a rule's SQS dead-letter queue, from EventBridge (the event itself) or from Lambda's
 * on-failure destination (an invocation record). How a dead letter is handed back is the
 * runtime's (`ports.redeliver`): the local bus schedules a delivery to that rule; in AWS the
 * consumer function is invoked asynchronously with the event, as EventBridge would.
 *
 * The outbox adds the events the bus itself refused for good (rule `outbox`: an entry over EventBridge's size limit, or
 * one it calls malformed), rather than retrying them until the stream drops them with every later record of their
 * shard. No rule received them, so there is no consumer to hand them back to: their letter names the audit record
 * that keeps the event, and a redrive of it is refused. Unless the letter is `held` (the bus did not take the event for
 * 12 hours, outbox/outbox.ts): its redrive publishes the event again, read from that record, to every rule, as the
 * outbox would have (review 103).
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { actingRole, mayReadEvent, toldBy } from "../access/event-readers.ts";
import type { RequestContext } from "../context.ts";
import { SimrootError } from "../error.ts";
import type { Outcome } from "../outcome.ts";
import { pageInput, partitionPage, type Page } from "../page.ts";
import { verb } from "../verb.ts";
import { busDeadLetterSchema, deadLetterPartition, outboxDeadLetterRule, type BusDeadLetter } from "./dead-letter-record.ts";
import type { BusEnvelope } from "./envelope.ts";
import { auditPartition, auditRecordSchema, auditSortKey, eventOfRecord, hashHolds, recordOfItem } from "../ledger/audit-record.ts";
import { routingOf } from "../outbox/interests.ts";
import type { Ports } from "../ports.ts";
import { domainEvent, type DomainEvent } from "./event.ts";
import { redeliverWithinDays } from "./redelivery-window.ts";

/**
 * Whether the key acting in `ctx` may be shown a dead letter: when its role may read the letter's event (review 92, as a
 * subscription's delivery log since review 87): operators and viewers were listed every admin-only event a consumer
 * failed, its type and subject (a key's or a source's id), and operators could hand it back.
 */
const mayReadLetter = (ctx: RequestContext, item: Record<string, unknown>) => {
  const event = (item.envelope as BusEnvelope | undefined)?.detail;
  if (event) return mayReadEvent(actingRole(ctx), event);
  // A letter of an event the bus refused keeps the types it tells of, not the event (review 94: judged by its own type
  // alone, a firing's record about a `key.created` was shown to operators, with the key's id).
  const told = Array.isArray(item.toldTypes) ? item.toldTypes.map(String) : [String(item.eventType)];
  return told.every((type) => mayReadEvent(actingRole(ctx), { type }));
};

export const listBusDeadLetters = verb(
  pageInput,
  async (ports, ctx, input): Promise<Page<BusDeadLetter>> =>
    partitionPage(
      ports,
      ports.tables.control,
      deadLetterPartition(ctx.tenantId),
      input,
      (item) => busDeadLetterSchema.parse(item),
      (item) => mayReadLetter(ctx, item),
    ),
);

/**
 * Hands the dead letter back to its consumer, then forgets it (a redrive that fails again comes back as a new dead letter);
 * refused for an event older than its consumers remember events by id.
 */
export const redriveBusDeadLetter = verb(z.object({ id: z.string().min(1).max(300) }), async (ports, ctx, input) => {
  const key = { pk: deadLetterPartition(ctx.tenantId), sk: input.id };
  const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: key, ConsistentRead: true }));
  if (!Item || !mayReadLetter(ctx, Item)) throw new SimrootError("dead_letter.not_found", "not_found", `No dead letter ${input.id}`);
  const held = Item.rule === outboxDeadLetterRule && Item.held === true;
  if (Item.rule === outboxDeadLetterRule && !held) {
    const record = Item.record as BusDeadLetter["record"];
    throw new SimrootError(
      "dead_letter.not_redrivable",
      "conflict",
      `The bus refused event ${String(Item.eventId)} itself (${String(Item.reason)}): no consumer received it to be handed it again. ` +
        `The audit trail keeps it${record ? ` (shard ${record.shard}, seq ${record.seq})` : ""}`,
    );
  }
  if (!held && !ports.redeliver) throw new SimrootError("dead_letter.unavailable", "unavailable", "This runtime cannot redeliver events");
  const letter = busDeadLetterSchema.parse(Item);
  const envelope = Item.envelope as BusEnvelope | undefined;
  // Consumers know an event they took by its id for 7 days (a rule's firing, a detector's finding), the letter stays 14:
  // handed back later, a rule that fired on it would fire again (review 159). A held letter reached no consumer.
  if (!held && !envelope)
    throw new SimrootError("dead_letter.not_redrivable", "conflict", `Dead letter ${input.id} keeps no event to hand back`);
  // Refused as well when its time cannot be read (review 161: NaN passed).
  const eventTime = Date.parse(envelope?.detail.time ?? envelope?.time ?? "");
  if (!held && !(eventTime >= ports.now().getTime() - redeliverWithinDays * 86_400_000))
    throw new SimrootError(
      "dead_letter.too_old",
      "conflict",
      `Event ${letter.eventId} is older than ${redeliverWithinDays} days: its consumers no longer know it by its id, and handed back it ` +
        "could act twice (a rule fire again). Act on it by hand from the audit trail",
    );
  const heldEvent = held ? await committedEvent(ports, ctx.tenantId, letter, Item.recordHash) : undefined;
  const event = domainEvent(
    ctx,
    "bus.dead_letter_redriven",
    letter.subject,
    {
      rule: letter.rule,
      eventId: letter.eventId,
      eventType: letter.eventType,
      // A held letter keeps no envelope: what it tells is its event's (review 104: judged by its type alone, the record of
      // a redriven firing about a key's creation was shown to operators).
      ...toldBy(envelope?.detail ?? heldEvent ?? { type: letter.eventType }),
      reason: letter.reason,
    },
    ports.now(),
  );
  // Handed back first, then forgotten and audited (review 159: forgotten first, a hand-back that failed with its put-back,
  // or a function killed between the two, lost the event, whose only copy the letter is). A hand-back that fails leaves the
  // letter as it was; one killed before the letter is forgotten leaves it listed, and a second redrive hands the event
  // back again, which its consumer takes as a redelivery, by its id.
  try {
    if (heldEvent) await ports.publisher.publish([heldEvent], await routingOf(ports, [heldEvent]));
    else await ports.redeliver!(letter.rule, envelope!);
  } catch (error) {
    throw new SimrootError("dead_letter.unavailable", "unavailable", `Event ${letter.eventId} could not be handed back: try again`, {
      cause: error,
    });
  }
  // Forgotten only as it was read: a hand-back that failed again at once may have put a new letter (a new `deadAt`) at the
  // same id, which stays. The redrive is audited either way.
  const replaced = new SimrootError("dead_letter.replaced", "conflict", `Dead letter ${input.id} was replaced or redriven meanwhile`);
  const forget = {
    Delete: {
      TableName: ports.tables.control,
      Key: key,
      ConditionExpression: "deadAt = :deadAt",
      ExpressionAttributeValues: { ":deadAt": letter.deadAt },
    },
  };
  try {
    await ports.ledger.commit({ tenantId: ctx.tenantId, events: [event], writes: [forget], onConditionFailed: () => replaced });
  } catch (error) {
    if (error !== replaced) throw error;
    await ports.ledger.commit({ tenantId: ctx.tenantId, events: [event], writes: [] });
  }
  return { value: { id: input.id, rule: letter.rule, redriven: true }, events: [event] } satisfies Outcome<unknown>;
});

/** The event a held letter stands for, from the audit record that committed it (kept 90 days, the letter 14). */
async function committedEvent(ports: Ports, tenantId: string, letter: BusDeadLetter, recordHash: unknown): Promise<DomainEvent> {
  const gone = () =>
    new SimrootError("dead_letter.not_redrivable", "conflict", `The audit record of event ${letter.eventId} is not in the trail`);
  if (!letter.record) throw gone();
  const { Item } = await ports.db.send(
    new GetCommand({
      TableName: ports.tables.audit,
      Key: { pk: auditPartition(tenantId, letter.record.shard), sk: auditSortKey(letter.record.seq) },
      ConsistentRead: true,
    }),
  );
  const parsed = Item ? auditRecordSchema.safeParse(recordOfItem(Item)) : undefined;
  if (!parsed?.success || parsed.data.eventId !== letter.eventId) throw gone();
  // The record as it was committed and held: its hash recomputes, and is the one the letter kept (review 104: an item
  // changed in the store since was published as it now read).
  const record = parsed.data;
  if (!hashHolds(record) || record.hash !== recordHash)
    throw new SimrootError("dead_letter.not_redrivable", "conflict", `The audit record of event ${letter.eventId} does not verify`);
  return eventOfRecord(record);
}
