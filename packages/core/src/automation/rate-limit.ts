/**
 * A fixed-window rate limit kept in DynamoDB, so every instance (every Lambda) counts the
 * same firings: one conditional counter per rule and window, expiring after it.
 */
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { SimrootError, isSimrootError } from "../error.ts";
import { writeTransaction } from "../store/transaction.ts";
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
  // A claim on another budget (a dry run's, the rule switched to act since) is no claim on this one.
  const claimItem = {
    TableName: ports.tables.automation,
    Item: { ...claim, claimedFor: key },
    ConditionExpression: "attribute_not_exists(pk) OR claimedFor <> :for",
    ExpressionAttributeValues: { ":for": key },
  };
  for (let attempt = 1; ; attempt++) {
    try {
      await writeTransaction(ports.db, [{ Update: take }, { Put: claimItem }], (index) =>
        index === 0
          ? new SimrootError("automation.rate_spent", "conflict", "spent")
          : new SimrootError("automation.claimed", "conflict", "claimed"),
      );
      return true;
    } catch (error) {
      if (isSimrootError(error) && error.code === "automation.rate_spent") return found();
      if (isSimrootError(error) && error.code === "automation.claimed") return "claimed";
      // Another firing's transaction on the counter (DynamoDB cancels, where an update alone would wait its turn):
      // again, after a jittered pause (review 99), as often as a conflicting writer of one item needs.
      if (!(isSimrootError(error) && error.code === "store.conflict") || attempt >= maxClaimAttempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** attempt)));
    }
  }
}
const maxClaimAttempts = 10;
