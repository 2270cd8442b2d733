/** Every item a query names, page after page (each page's `LastEvaluatedKey` read on): for partitions known to be small. */
import { QueryCommand, type QueryCommandInput } from "@aws-sdk/lib-dynamodb";
import type { Ports } from "../ports.ts";

export async function queryAll(db: Ports["db"], input: Omit<QueryCommandInput, "ExclusiveStartKey">): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await db.send(new QueryCommand({ ...input, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}
