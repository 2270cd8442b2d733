import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { SimrootError } from "../error.ts";
import { hasIdKind } from "../id.ts";
import { listByTenant, pageInput, type Page } from "../page.ts";
import { batchGetAll } from "../store/batch-get.ts";
import { verb } from "../verb.ts";
import { deviceSchema, type Device } from "./device.ts";
import { deviceKey, deviceListKey } from "./keys.ts";

const storedDevice = (item: Record<string, unknown>): Device => deviceSchema.parse(item);

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

/**
 * A tenant's devices in id (registration) order, a page at a time: the page's ids from the `byTenant` index, the
 * devices read by key (the index copies only what the feed snapshot reads: platform/tables.ts). A device removed between
 * the two reads is left out.
 */
export const listDevices = verb(pageInput, async (ports, ctx, input): Promise<Page<Device>> => {
  const page = await listByTenant(ports, "identity", deviceListKey(ctx.tenantId, "").gsi1pk, input, (item) => String(item.id));
  const items = await batchGetAll(
    ports,
    ports.tables.identity,
    page.items.map((id) => deviceKey(ctx.tenantId, id)),
  );
  const byId = new Map(items.map((item) => [String(item.id), item]));
  return { ...page, items: page.items.flatMap((id) => (byId.has(id) ? [storedDevice(byId.get(id)!)] : [])) };
});
