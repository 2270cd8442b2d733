/**
 * The automation consumer's work for one event: every enabled rule of the event's tenant
 * whose pattern matches the envelope fires, within its rate limit, once per event (a
 * redelivered event does not fire again). Its actions act as the rule, and the firing is
 * committed as `automation.fired` (audited: the rule, the event, what each action did).
 *
 * Loop protection: an action acts as `rule:<chain>` (the rules that led to it, in order), so
 * the events it causes carry that chain as their actor; a rule never fires on an event whose
 * chain already names it, and chains stop at `maxChain` rules.
 */
import { randomUUID } from "node:crypto";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { mayReadEvent, toldBy } from "../access/event-readers.ts";
import type { RequestContext } from "../context.ts";
import { SimrootError, isSimrootError } from "../error.ts";
import type { BusEnvelope } from "../event/envelope.ts";
import { domainEvent, type DomainEvent } from "../event/event.ts";
import { matchesPattern } from "../event/pattern.ts";
import type { Outcome } from "../outcome.ts";
import { eventSource } from "../platform/bus-names.ts";
import type { Ports } from "../ports.ts";
import { deviceOfEvent, runAction, type ActionResult } from "./actions.ts";
import { takeRate } from "./rate-limit.ts";
import { listStripe } from "../store/stripe.ts";
import { firedEventType, tenantRules, type AutomationRule } from "./rule.ts";

export const maxChain = 4;
const firedRetentionSeconds = 7 * 24 * 60 * 60;
/** A rule's matches past its rate limit recorded in a window at most: this many, or its limit when higher. */
export const spentMatchesRecorded = 10;

/** A firing's item before its record: the rule's budget taken for the event, its actions under way. */
const claimedOutcome = "claimed";

/** The rules that led to an event: `rule:rul_A>rul_B` -> [rul_A, rul_B]. */
export const ruleChainOf = (actor: string): string[] => (actor.startsWith("rule:") ? actor.slice(5).split(">") : []);

/**
 * The rules that led to an event: its actor's, or, for a component's record of what it did with another event (an
 * integration's `integration.*-synced`, `data.cause.actor`), that event's. Before review 84 such a record started no
 * chain: two rules answering the IoT sync's records of a device's state with each other's action took turns forever.
 * Only a `system:` record's cause is read: what a source reports is never a system record.
 */
export function chainOf(event: DomainEvent): string[] {
  if (!event.actor.startsWith("system:")) return ruleChainOf(event.actor);
  const cause = event.data.cause;
  const actor = typeof cause === "object" && cause !== null ? (cause as { actor?: unknown }).actor : undefined;
  return typeof actor === "string" ? ruleChainOf(actor) : [];
}

export interface Firing {
  readonly ruleId: string;
  readonly outcome: "fired" | "dry-run" | "rate-limited" | "loop-prevented";
  readonly actions: readonly ActionResult[];
}

/**
 * A rule's firing on an event, kept to fire once per event. Spread over 16 partitions by the event id: a rule matching
 * a re-attach storm (2,000 events/s on one tenant) records one firing per event, more than one partition takes (1,000
 * write units a second). Firings recorded before this spread (under `T#<tenant>#fired`) are not looked up: an event
 * redelivered across the deploy that introduced it may fire its rules again.
 */
const firedKey = (tenantId: string, ruleId: string, eventId: string) => ({
  pk: `T#${tenantId}#fired#${String(listStripe(eventId)).padStart(2, "0")}`,
  sk: `${ruleId}|${eventId}`,
});

export async function runAutomation(ports: Ports, envelope: BusEnvelope): Promise<Outcome<Firing[]>> {
  const event = envelope.detail;
  if (envelope.source !== eventSource) return { value: [], events: [] };
  // A firing's record is no change to act on (review 84): every firing, dry-run and rate-limited ones included, records
  // one, as its rule, so N rules matching records fired on each other's, N + N(N-1) + ... down the chain (about 94
  // million records for one change with a tenant's 100 rules), which neither dry-run nor rate limits held.
  if (event.type === firedEventType) return { value: [], events: [] };
  const chain = chainOf(event);
  // A rule fires only on what its role reads, and not with a stored pattern today's checks refuse (review 90).
  const matching = (await tenantRules(ports, event.tenantId)).filter(
    (rule) => rule.enabled && !rule.problem && mayReadEvent(rule.role, event) && matchesPattern(rule.pattern, envelope),
  );
  const firings: Firing[] = [];
  const events: DomainEvent[] = [];
  for (const rule of matching) {
    if (chain.includes(rule.id) || chain.length >= maxChain) {
      // Not recorded in the audit trail: a loop would write one record per turn.
      firings.push({ ruleId: rule.id, outcome: "loop-prevented", actions: [] });
      continue;
    }
    const fired = await fire(ports, rule, envelope, chain);
    if (!fired) continue;
    firings.push(fired.value);
    events.push(...fired.events);
  }
  return { value: firings, events };
}

async function fire(ports: Ports, rule: AutomationRule, envelope: BusEnvelope, chain: readonly string[]) {
  const event = envelope.detail;
  const key = firedKey(event.tenantId, rule.id, event.id);
  const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.automation, Key: key, ConsistentRead: true }));
  // A dry run counts against a budget of its own: switched to act, the rule has its whole budget (review 67).
  const rateKey = rule.dryRun ? `rule#${rule.id}#dry` : `rule#${rule.id}`;
  // Claimed: a delivery of this event took a unit of the rule's budget and failed before its record (review 97: its
  // retry found the budget spent, by itself, and the rule's containment was never done).
  const claimed = Item?.outcome === claimedOutcome && Item.claimedFor === rateKey;
  if (Item && Item.outcome !== claimedOutcome) return undefined;
  // The claim this delivery acts under: its own, or the one it found. Only with it may the record replace the claim.
  const claimToken = claimed ? String(Item.claimToken) : randomUUID();
  const ctx: RequestContext = { tenantId: event.tenantId, actor: `rule:${[...chain, rule.id].join(">")}`, requestId: event.requestId };
  const events: DomainEvent[] = [];
  const actions: ActionResult[] = [];
  let outcome: Firing["outcome"];
  const expiresAt = Math.floor(ports.now().getTime() / 1000) + firedRetentionSeconds;
  const claim = { ...key, outcome: claimedOutcome, claimToken, expiresAt };
  const taken = claimed || (await takeRate(ports, event.tenantId, rateKey, rule.rateLimit.max, rule.rateLimit.perSeconds, claim));
  const holdsClaim = taken === true;
  // Another delivery of the event, side by side, holds its unit: it acts.
  if (taken === "claimed") return undefined;
  if (!taken) {
    // Not recorded on an event a rule caused (review 84), as a loop is not: each change a rule makes is matched by the
    // tenant's other rules, and one record of each spent match made a record for every rule matching every change
    // (100,000 a minute with 100 rules taking their default 10 firings each). A match on what a person, a source or a
    // detector did is still recorded: it is the one a timeline needs (a device not contained, and why).
    const spent = { value: { ruleId: rule.id, outcome: "rate-limited" as const, actions: [] }, events: [] };
    if (chain.length > 0) return spent;
    // Recorded within a budget of its own: every spent match was a ledger commit, so a rule matching a re-attach storm
    // (2,000 events a second) added as many commits a second to the tenant's ledger, whatever its limit said. The
    // timeline keeps the first ones of each window; the others are counted (`AutomationMatchesUnrecorded`).
    const recorded = Math.max(rule.rateLimit.max, spentMatchesRecorded);
    if (!(await takeRate(ports, event.tenantId, `${rateKey}#spent`, recorded, rule.rateLimit.perSeconds))) {
      ports.metrics?.add("AutomationMatchesUnrecorded", 1);
      return spent;
    }
    outcome = "rate-limited";
  } else if (rule.dryRun) {
    outcome = "dry-run";
    actions.push(...rule.actions.map((action) => ({ type: action.type, outcome: "would-do" as const, detail: JSON.stringify(action) })));
  } else {
    outcome = "fired";
    for (const action of rule.actions) {
      const done = await runAction(ports, ctx, rule, action, envelope);
      actions.push(done.result);
      events.push(...done.events);
    }
  }
  const now = ports.now();
  const subject = deviceOfEvent(event) ?? event.subject;
  const record = domainEvent(
    ctx,
    firedEventType,
    subject,
    { ruleId: rule.id, ruleName: rule.name, eventId: event.id, eventType: event.type, ...toldBy(event), outcome, actions },
    now,
  );
  try {
    await ports.ledger.commit({
      tenantId: event.tenantId,
      events: [record],
      writes: [
        {
          Put: {
            TableName: ports.tables.automation,
            Item: { ...key, outcome, expiresAt: Math.floor(now.getTime() / 1000) + firedRetentionSeconds },
            // Over the claim this delivery holds, else over nothing: a delivery that found the window spent must not
            // bury a claim another holds under "rate-limited" (review 100: that one's retry then never acted).
            ...(holdsClaim
              ? {
                  ConditionExpression: "outcome = :claimed AND claimToken = :token",
                  ExpressionAttributeValues: { ":claimed": claimedOutcome, ":token": claimToken },
                }
              : { ConditionExpression: "attribute_not_exists(pk)" }),
          },
        },
      ],
      onConditionFailed: () => new SimrootError("automation.already_fired", "conflict", "fired already"),
    });
  } catch (error) {
    if (!(isSimrootError(error) && error.code === "automation.already_fired")) throw error;
    return { value: { ruleId: rule.id, outcome, actions }, events };
  }
  return { value: { ruleId: rule.id, outcome, actions } satisfies Firing, events: [...events, record] };
}
