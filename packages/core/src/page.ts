import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { SimrootError } from "./error.ts";
import type { Ports } from "./ports.ts";

export interface Page<Item> {
  readonly items: Item[];
  /** Pass back as `cursor` for the next page; absent on the last page. */
  readonly next: string | undefined;
}

export const pageInput = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(2048).optional(),
});

/** Cursors are opaque to clients: the store's last evaluated key, base64url JSON. */
export const encodeCursor = (key: Record<string, unknown> | undefined): string | undefined =>
  key ? Buffer.from(JSON.stringify(key)).toString("base64url") : undefined;

/** The attributes a cursor of a listing names: an index's keys and its table's, or a table's; a subject's position. */
const cursorFields = (scope: Readonly<Record<string, string>>): readonly string[] =>
  "gsi1pk" in scope ? ["gsi1pk", "gsi1sk", "pk", "sk"] : "subject" in scope ? ["subject", "after"] : ["pk", "sk"];

/**
 * Decodes a cursor, checking that it stays inside the queried partition (`scope`, e.g.
 * `{ gsi1pk: "T#ten_1#device" }`): a forged cursor cannot reach another tenant's items. And that it is shaped as the
 * listing's keys are, exactly those attributes, each a non-empty string (every key of every table is a string): a
 * cursor of the right partition with a field left out or added, or a number, reached the store, whose refusal answered
 * 500 (review 92).
 */
export function decodeCursor(cursor: string | undefined, scope: Readonly<Record<string, string>>): Record<string, unknown> | undefined {
  if (cursor === undefined) return undefined;
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (key && typeof key === "object" && !Array.isArray(key)) {
      const record = key as Record<string, unknown>;
      const fields = cursorFields(scope);
      const keyShaped =
        Object.keys(record).length === fields.length && fields.every((field) => typeof record[field] === "string" && record[field] !== "");
      if (keyShaped && Object.entries(scope).every(([field, value]) => record[field] === value)) return record;
    }
  } catch {}
  throw invalidCursor();
}

export const invalidCursor = () =>
  new SimrootError("request.invalid_cursor", "input", "The cursor is not one this API returned", {
    issues: [{ path: "cursor", message: "not a cursor from a previous page" }],
  });

/** The store refusing a start key the cursor named (right partition, forged rest): the cursor is bad, not us. */
export const isInvalidStartKey = (error: unknown) =>
  (error as Error | undefined)?.name === "ValidationException" && /starting key|ExclusiveStartKey/i.test((error as Error).message);

/**
 * One page of the items listed under `gsi1pk` in a table's `byTenant` index: the one query
 * behind every tenant-scoped list (devices, keys, sources, policies, grants). It reads one item past the page, so that
 * the last page has no cursor: the store names its last key whenever a query stops at its limit, and a listing of
 * exactly that many items handed a cursor to an empty page (review 113).
 */
export async function listByTenant<Item>(
  ports: Ports,
  table: keyof Ports["tables"],
  gsi1pk: string,
  page: { readonly limit: number; readonly cursor?: string | undefined },
  parse: (item: Record<string, unknown>) => Item,
): Promise<Page<Item>> {
  const result = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables[table],
      IndexName: "byTenant",
      KeyConditionExpression: "gsi1pk = :list",
      ExpressionAttributeValues: { ":list": gsi1pk },
      Limit: page.limit + 1,
      ExclusiveStartKey: decodeCursor(page.cursor, { gsi1pk }),
    }),
  );
  const items = result.Items ?? [];
  if (items.length <= page.limit) return { items: items.map(parse), next: encodeCursor(result.LastEvaluatedKey) };
  const last = items[page.limit - 1]!;
  return {
    items: items.slice(0, page.limit).map(parse),
    next: encodeCursor({ gsi1pk: last.gsi1pk, gsi1sk: last.gsi1sk, pk: last.pk, sk: last.sk }),
  };
}

/**
 * One page of the items of partition `pk` of a table (consistent read, in sort-key order): the lists kept per tenant and
 * kind. With `shown`, only the items it passes: the page reads on past the others until it holds `limit` or the
 * partition ends, and its cursor is the key of the last item shown, never of one held back (review 92: the store's last
 * key read named it to the reader). `read`: newest (highest sort key) first, and an eventually consistent read.
 */
export async function partitionPage<Item>(
  ports: Pick<Ports, "db">,
  table: string,
  pk: string,
  page: { readonly limit: number; readonly cursor?: string | undefined },
  parse: (item: Record<string, unknown>) => Item,
  shown: (item: Record<string, unknown>) => boolean = () => true,
  read: { readonly newestFirst?: boolean; readonly eventual?: boolean } = {},
): Promise<Page<Item>> {
  const { items, next } = await shownPage(
    page.limit,
    decodeCursor(page.cursor, { pk }),
    (start, limit) =>
      ports.db.send(
        new QueryCommand({
          TableName: table,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": pk },
          Limit: limit,
          ExclusiveStartKey: start,
          ConsistentRead: !read.eventual,
          ...(read.newestFirst ? { ScanIndexForward: false } : {}),
        }),
      ),
    shown,
  );
  return { items: items.map(parse), next };
}

type StartKey = Record<string, unknown> | undefined;

/**
 * Up to `limit` items that `shown` passes, read from `start` by `read` (a query of one partition, in its order), and the
 * cursor after them: the key of the last item shown, never of one held back, and none once the partition is read to
 * its end. Each read asks for at least 100 items: asking for what the page still lacked, a page nearly full read one
 * hidden item a query (review 94: 3,000 hidden deliveries after 49 shown took 3,001 queries).
 */
async function shownPage(
  limit: number,
  start: StartKey,
  read: (start: StartKey, limit: number) => Promise<{ Items?: Record<string, unknown>[]; LastEvaluatedKey?: StartKey }>,
  shown: (item: Record<string, unknown>) => boolean,
): Promise<{ items: Record<string, unknown>[]; next: string | undefined }> {
  const items: Record<string, unknown>[] = [];
  let more = false;
  do {
    const result = await read(start, Math.max(limit, 100));
    for (const item of result.Items ?? []) {
      if (!shown(item)) continue;
      if (items.length === limit) {
        more = true;
        break;
      }
      items.push(item);
    }
    start = result.LastEvaluatedKey;
  } while (start && !more && items.length < limit);
  const last = items.at(-1);
  return { items, next: (more || start) && last ? encodeCursor({ pk: last.pk, sk: last.sk }) : undefined };
}
