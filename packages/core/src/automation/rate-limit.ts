/**
 * A fixed-window rate limit kept in DynamoDB, so every instance (every Lambda) counts the
 * same firings: one conditional counter per rule and window, expiring after it.
 */
import { ConditionalCheckFailedException, TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
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
 * 97): "claimed" when it is there already, another delivery of the event holding the unit.
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
  try {
    if (!claim) await ports.db.send(new UpdateCommand(take));
    else
      await ports.db.send(
        new TransactWriteCommand({
          TransactItems: [
            { Update: take },
            { Put: { TableName: ports.tables.automation, Item: claim, ConditionExpression: "attribute_not_exists(pk)" } },
          ],
        }),
      );
    return true;
  } catch (error) {
    const reasons = error instanceof TransactionCanceledException ? (error.CancellationReasons ?? []) : [];
    if (reasons[1]?.Code === "ConditionalCheckFailed") return "claimed";
    if (error instanceof ConditionalCheckFailedException || reasons[0]?.Code === "ConditionalCheckFailed") {
      if (spent.size >= maxSpent) spent.clear();
      spent.set(counter, window);
      return false;
    }
    throw error;
  }
}
