import { BatchGetCommand } from "@aws-sdk/lib-dynamodb";
import type { Ports } from "../ports.ts";

/**
 * Reads items of one table by key in batches of 100 (BatchGetItem's limit), consistently,
 * retrying what comes back unprocessed after a short, growing pause (as AWS advises). Each key
 * once: BatchGetItem refuses a request naming a key twice.
 */
export async function batchGetAll(
  ports: Pick<Ports, "db">,
  table: string,
  given: readonly Record<string, unknown>[],
): Promise<Record<string, unknown>[]> {
  const keys = [...new Map(given.map((key) => [`${String(key.pk)}\u0000${String(key.sk)}`, key])).values()];
  const found: Record<string, unknown>[] = [];
  for (let start = 0; start < keys.length; start += 100) {
    let pending: Record<string, unknown>[] = keys.slice(start, start + 100);
    for (let retry = 0; pending.length > 0; retry++) {
      if (retry > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** retry)));
      const result = await ports.db.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: pending, ConsistentRead: true } } }));
      found.push(...(result.Responses?.[table] ?? []));
      pending = result.UnprocessedKeys?.[table]?.Keys ?? [];
    }
  }
  return found;
}
