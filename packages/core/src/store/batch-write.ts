import { BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { SimrootError } from "../error.ts";
import type { Ports } from "../ports.ts";

/** Rounds of retries for puts left unprocessed (each waits longer, up to a second). */
const maxRetries = 8;

/**
 * Puts items (each `{ TableName, Item }`) in batches of 25 (BatchWriteItem's limit), not conditionally and not in a
 * transaction: for items whose put is idempotent (the same item again changes nothing). What comes back unprocessed
 * is put again after a short, growing pause, a bounded number of times; past that it throws `store.throttled`. One
 * key twice in one batch is refused by DynamoDB: the last of equal keys is put.
 */
export async function batchPutAll(ports: Pick<Ports, "db">, puts: readonly { TableName: string; Item: Record<string, unknown> }[]) {
  const unique = [
    ...new Map(puts.map((put) => [`${put.TableName}\u0000${String(put.Item.pk)}\u0000${String(put.Item.sk)}`, put])).values(),
  ];
  for (let start = 0; start < unique.length; start += 25) {
    let pending: Record<string, { PutRequest?: { Item?: Record<string, unknown> } }[]> = {};
    for (const put of unique.slice(start, start + 25)) (pending[put.TableName] ??= []).push({ PutRequest: { Item: put.Item } });
    for (let retry = 0; Object.keys(pending).length > 0; retry++) {
      if (retry > maxRetries) throw new SimrootError("store.throttled", "unavailable", "The store left puts unprocessed; retry");
      if (retry > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** retry)));
      const result = await ports.db.send(new BatchWriteCommand({ RequestItems: pending as never }));
      pending = (result.UnprocessedItems ?? {}) as typeof pending;
    }
  }
}
