/**
 * A fixed-window rate limit kept in DynamoDB, so every instance (every Lambda) counts the
 * same firings: one conditional counter per rule and window, expiring after it.
 */
import { randomUUID } from "node:crypto";
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { busy } from "../store/transaction.ts";
import type { Ports } from "../ports.ts";

/**
 * Windows this instance found spent, per table, tenant and key: a spent window stays spent, so the instance stops
 * writing the counter for it. Every refused write still costs a write unit on the counter's one item: a rule matching
 * 2,000 events/s would otherwise write it 2,000 times a second (one item takes 1,000 write units a second), throttled,
 * and with it every firing of the tenant's rules. Instances that share nothing each learn it once per window.
 */
const spent = new Map<string, number>();
const maxSpent = 10_000;

/**
 * Takes one unit of `key`'s budget for the current window; false when the window's `max` is spent. With `claim`, an
 * item written in the same transaction only if it is absent (the unit's holder: a rule's firing of one event, review
 * 97), marked `claimedFor` the key: "claimed" when it is there already, another delivery of the event holding the unit.
 */
export async function takeRate(
  ports: Ports,
  tenantId: string,
  key: string,
  max: number,
  perSeconds: number,
  claim?: Record<string, unknown>,
): Promise<boolean | "claimed"> {
  const nowSeconds = Math.floor(ports.now().getTime() / 1000);
  const window = nowSeconds - (nowSeconds % perSeconds);
  // The limit is part of what was found spent: a rule whose limit is raised within the window counts again at once.
  const counter = `${ports.tables.automation}|${tenantId}|${key}|${max}|${perSeconds}`;
  if (spent.get(counter) === window) return false;
  const take = {
    TableName: ports.tables.automation,
    Key: { pk: `T#${tenantId}#rate#${key}`, sk: String(window) },
    UpdateExpression: "ADD n :one SET expiresAt = :expires",
    ConditionExpression: "attribute_not_exists(n) OR n < :max",
    ExpressionAttributeValues: { ":one": 1, ":max": max, ":expires": window + perSeconds + 60 },
  };
  const found = () => {
    if (spent.size >= maxSpent) spent.clear();
    spent.set(counter, window);
    return false;
  };
  if (!claim) {
    try {
      await ports.db.send(new UpdateCommand(take));
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return found();
      throw error;
    }
  }
  // A claim on another budget (a dry run's, the rule switched to act since) is no claim on this one. A firing's record
  // (no longer a claim: another delivery of the event acted and recorded it since this one read the item) is never
  // replaced (review 128: it has no `claimedFor`, which `<>` took for another budget, so the event fired twice).
  const claimItem = {
    TableName: ports.tables.automation,
    Item: { ...claim, claimedFor: key },
    ConditionExpression: "attribute_not_exists(pk) OR (outcome = :claimed AND claimedFor <> :for)",
    ExpressionAttributeValues: { ":for": key, ":claimed": claim.outcome },
  };
  // One token for every attempt: a transaction that committed though its answer was lost (a 5xx, a timeout) is
  // answered as committed when sent again, not refused on its own claim (review 100).
  const token = randomUUID();
  for (let attempt = 1; ; attempt++) {
    try {
      await ports.db.send(new TransactWriteCommand({ TransactItems: [{ Update: take }, { Put: claimItem }], ClientRequestToken: token }));
      return true;
    } catch (error) {
      const reasons = error instanceof TransactionCanceledException ? (error.CancellationReasons ?? []) : [];
      // The claim first: when both fail, another delivery of the event holds a unit of the window it found spent, and
      // this one must not record the event as rate-limited over that claim (review 100).
      if (reasons[1]?.Code === "ConditionalCheckFailed") return "claimed";
      if (reasons[0]?.Code === "ConditionalCheckFailed") return found();
      // Another firing's transaction on the counter (DynamoDB cancels, where an update alone would wait its turn), or
      // the store busy: again, after a jittered pause (review 99).
      const contended = reasons.some((reason) => reason.Code === "TransactionConflict") || busy(error);
      if (!contended || attempt >= maxClaimAttempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** attempt)));
    }
  }
}
const maxClaimAttempts = 10;
