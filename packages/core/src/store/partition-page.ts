import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { decodeCursor, encodeCursor, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";

/** One page of the items of partition `pk` (consistent read, in sort-key order), each through `parse`. */
export async function partitionPage<Item>(
  ports: Pick<Ports, "db">,
  table: string,
  pk: string,
  page: { readonly limit: number; readonly cursor?: string | undefined },
  parse: (item: Record<string, unknown>) => Item,
): Promise<Page<Item>> {
  const result = await ports.db.send(
    new QueryCommand({
      TableName: table,
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": pk },
      Limit: page.limit,
      ExclusiveStartKey: decodeCursor(page.cursor, { pk }),
      ConsistentRead: true,
    }),
  );
  return { items: (result.Items ?? []).map(parse), next: encodeCursor(result.LastEvaluatedKey) };
}
