/**
 * A fixed-window rate limit kept in DynamoDB, so every instance (every Lambda) counts the
 * same firings: one conditional counter per rule and window, expiring after it.
 */
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Ports } from "../ports.ts";

/** Takes one unit of `key`'s budget for the current window; false when the window's `max` is spent. */
export async function takeRate(ports: Ports, tenantId: string, key: string, max: number, perSeconds: number): Promise<boolean> {
  const nowSeconds = Math.floor(ports.now().getTime() / 1000);
  const window = nowSeconds - (nowSeconds % perSeconds);
  try {
    await ports.db.send(
      new UpdateCommand({
        TableName: ports.tables.automation,
        Key: { pk: `T#${tenantId}#rate#${key}`, sk: String(window) },
        UpdateExpression: "ADD n :one SET expiresAt = :expires",
        ConditionExpression: "attribute_not_exists(n) OR n < :max",
        ExpressionAttributeValues: { ":one": 1, ":max": max, ":expires": window + perSeconds + 60 },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
