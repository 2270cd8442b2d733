import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { SimrootError } from "../error.ts";
import { hasIdKind } from "../id.ts";
import { decodeCursor, encodeCursor, pageInput, type Page } from "../page.ts";
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

/** A tenant's devices in id (registration) order, a page at a time. */
export const listDevices = verb(pageInput, async (ports, ctx, input): Promise<Page<Device>> => {
  const { gsi1pk } = deviceListKey(ctx.tenantId, "");
  const result = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.identity,
      IndexName: "byTenant",
      KeyConditionExpression: "gsi1pk = :list",
      ExpressionAttributeValues: { ":list": gsi1pk },
      Limit: input.limit,
      ExclusiveStartKey: decodeCursor(input.cursor, { gsi1pk }),
    }),
  );
  return { items: (result.Items ?? []).map(storedDevice), next: encodeCursor(result.LastEvaluatedKey) };
});
