import { BatchWriteCommand } from "@aws-sdk/lib-dynamodb";
import { SimrootError } from "../error.ts";
import type { Ports } from "../ports.ts";

/** Rounds of retries for puts left unprocessed (each waits longer, up to a second). */
const maxRetries = 8;

/**
 * BatchWriteItem calls in flight at once. A stream reader's invocation writes a thousand records' items (the history:
 * two each), one call of 25 after another took 80 round trips, most of the invocation; 4 at once keep one invocation's
 * writes to a few hundred write units at a time (a partition takes 1,000 a second).
 */
const inFlight = 4;

/**
 * Puts items (each `{ TableName, Item }`) in batches of 25 (BatchWriteItem's limit), at most `inFlight` batches at
 * once, not conditionally and not in a transaction: for items whose put is idempotent (the same item again changes
 * nothing), so their order does not matter. What comes back unprocessed is put again after a short, growing pause, a
 * bounded number of times; past that it throws `store.throttled`. Throws once no batch is in flight any more, so a
 * caller that retries never races its own earlier writes. One key twice in one batch is refused by DynamoDB: the last
 * of equal keys is put.
 */
export async function batchPutAll(ports: Pick<Ports, "db">, puts: readonly { TableName: string; Item: Record<string, unknown> }[]) {
  const unique = [
    ...new Map(puts.map((put) => [`${put.TableName}\u0000${String(put.Item.pk)}\u0000${String(put.Item.sk)}`, put])).values(),
  ];
  const batches: (typeof unique)[] = [];
  for (let start = 0; start < unique.length; start += 25) batches.push(unique.slice(start, start + 25));
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < batches.length) {
      const batch = batches[next++]!;
      try {
        await putBatch(ports, batch);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, batches.length) }, worker));
  if (failure) throw failure.error;
}

async function putBatch(ports: Pick<Ports, "db">, batch: readonly { TableName: string; Item: Record<string, unknown> }[]) {
  let pending: Record<string, { PutRequest?: { Item?: Record<string, unknown> } }[]> = {};
  for (const put of batch) (pending[put.TableName] ??= []).push({ PutRequest: { Item: put.Item } });
  for (let retry = 0; Object.keys(pending).length > 0; retry++) {
    if (retry > maxRetries) throw new SimrootError("store.throttled", "unavailable", "The store left puts unprocessed; retry");
    if (retry > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** retry)));
    const result = await ports.db.send(new BatchWriteCommand({ RequestItems: pending as never }));
    pending = Object.fromEntries(Object.entries(result.UnprocessedItems ?? {}).filter(([, left]) => left.length > 0)) as typeof pending;
  }
}
