import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { SimrootError } from "../error.ts";
import { hasIdKind } from "../id.ts";
import { invalidCursor, pageInput, type Page } from "../page.ts";
import { batchGetAll } from "../store/batch-get.ts";
import type { Ports } from "../ports.ts";
import { verb } from "../verb.ts";
import type { Device } from "./device.ts";
import { deviceKey, listingPartitions } from "./keys.ts";
import { storedDevice } from "./store.ts";

export const getDevice = verb(
  z.object({ id: z.string().refine((id) => hasIdKind("device", id), "not a device id (dev_...)") }),
  async (ports, ctx, input): Promise<Device> => {
    const result = await ports.db.send(
      new GetCommand({ TableName: ports.tables.identity, Key: deviceKey(ctx.tenantId, input.id), ConsistentRead: true }),
    );
    if (!result.Item) throw new SimrootError("device.not_found", "not_found", `No device ${input.id}`);
    return storedDevice(result.Item);
  },
);

/** A listing cursor: the tenant's listing and the last id listed (another tenant's cursor is refused, not followed). */
const listCursor = z.object({ list: z.string(), after: z.string().min(1).max(200) }).strict();
const listName = (tenantId: string) => `T#${tenantId}#device`;

function decodeAfter(tenantId: string, cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  try {
    const parsed = listCursor.parse(JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")));
    if (parsed.list === listName(tenantId)) return parsed.after;
  } catch {}
  throw invalidCursor();
}

/**
 * The ids of a tenant's next `limit` devices in id order after `after`: the listing is striped over several index
 * partitions (device/keys.ts), each in id order; all are read at once and merged.
 */
async function listedIds(ports: Ports, tenantId: string, limit: number, after: string | undefined) {
  const results = await Promise.all(
    listingPartitions(tenantId, "device").map((partition) =>
      ports.db.send(
        new QueryCommand({
          TableName: ports.tables.identity,
          IndexName: "byTenant",
          KeyConditionExpression: after === undefined ? "gsi1pk = :p" : "gsi1pk = :p AND gsi1sk > :after",
          ExpressionAttributeValues: { ":p": partition, ...(after === undefined ? {} : { ":after": after }) },
          ProjectionExpression: "gsi1sk",
          Limit: limit,
        }),
      ),
    ),
  );
  // A device rewritten between two of the reads may be listed under its former partition and its stripe: once.
  let ids = [...new Set(results.flatMap((result) => (result.Items ?? []).map((item) => String(item.gsi1sk))))].sort();
  // A partition whose read stopped early (at `limit`, or at DynamoDB's 1 MB a query) may hold ids below those other
  // partitions returned: the page ends at the lowest id where a read stopped, and the next page reads on from there.
  const stops = results.flatMap((result) => (result.LastEvaluatedKey ? [String(result.LastEvaluatedKey.gsi1sk)] : []));
  const bound = stops.sort()[0];
  if (bound !== undefined) ids = ids.filter((id) => id <= bound);
  const more = ids.length > limit || bound !== undefined;
  const page = ids.slice(0, limit);
  return { ids: page, next: more && page.length > 0 ? page.at(-1) : undefined };
}

/**
 * A tenant's devices in id (registration) order, a page at a time: the page's ids from the `byTenant` index, the
 * devices read by key (the index copies only what the feed snapshot reads: platform/tables.ts). A device removed between
 * the two reads is left out. The cursor is the last id listed.
 */
export const listDevices = verb(pageInput, async (ports, ctx, input): Promise<Page<Device>> => {
  const listed = await listedIds(ports, ctx.tenantId, input.limit, decodeAfter(ctx.tenantId, input.cursor));
  const items = await batchGetAll(
    ports,
    ports.tables.identity,
    listed.ids.map((id) => deviceKey(ctx.tenantId, id)),
  );
  const byId = new Map(items.map((item) => [String(item.id), item]));
  return {
    items: listed.ids.flatMap((id) => (byId.has(id) ? [storedDevice(byId.get(id)!)] : [])),
    next:
      listed.next === undefined
        ? undefined
        : Buffer.from(JSON.stringify({ list: listName(ctx.tenantId), after: listed.next })).toString("base64url"),
  };
});
