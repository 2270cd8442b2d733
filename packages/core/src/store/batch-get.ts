import { BatchGetCommand } from "@aws-sdk/lib-dynamodb";
import { SimrootError } from "../error.ts";
import type { Ports } from "../ports.ts";

/** Batches read at once. */
const inFlight = 4;
/** Rounds of retries for keys left unprocessed (each waits longer, up to a second). */
const maxRetries = 8;

/** One item's key as text (its `pk` and `sk`): to match items read back to the keys asked for. */
export const itemKeyText = (item: Record<string, unknown>) => `${String(item.pk)}\u0000${String(item.sk)}`;

/**
 * Reads items of one table by key in batches of 100 (BatchGetItem's limit), consistently,
 * retrying what comes back unprocessed after a short, growing pause (as AWS advises), a bounded
 * number of times. Each key
 * once: BatchGetItem refuses a request naming a key twice. Items come back in no particular order.
 */

export async function batchGetAll(
  ports: Pick<Ports, "db">,
  table: string,
  given: readonly Record<string, unknown>[],
  consistent = true,
): Promise<Record<string, unknown>[]> {
  const keys = [...new Map(given.map((key) => [itemKeyText(key), key])).values()];
  const found: Record<string, unknown>[] = [];
  const readBatch = async (batch: Record<string, unknown>[]) => {
    let pending = batch;
    for (let retry = 0; pending.length > 0; retry++) {
      // Throttled past this (about 5 s of waits): the caller's own backoff takes over, as for any refused request.
      if (retry > maxRetries) {
        throw new SimrootError("store.throttled", "unavailable", `The store left ${pending.length} keys of ${table} unread; retry`);
      }
      if (retry > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** retry)));
      const result = await ports.db.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: pending, ConsistentRead: consistent } } }));
      found.push(...(result.Responses?.[table] ?? []));
      pending = result.UnprocessedKeys?.[table]?.Keys ?? [];
    }
  };
  // Up to `inFlight` batches at once (a page of 1,000 audit records is 10 batches).
  for (let start = 0; start < keys.length; start += 100 * inFlight) {
    const batches = Array.from({ length: inFlight }, (_, n) => keys.slice(start + n * 100, start + (n + 1) * 100)).filter(
      (batch) => batch.length > 0,
    );
    await Promise.all(batches.map(readBatch));
  }
  return found;
}
