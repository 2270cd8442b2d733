/**
 * Reading the tenant's feed epoch (epoch.ts says what it is and how an admin advances it), apart from the advance:
 * every function that signs heads or notices reads it, and only the enforcement API advances it.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type { Ports } from "../ports.ts";

export const feedEpochKey = (tenantId: string) => ({ pk: `T#${tenantId}`, sk: "feed-epoch" });

/** The tenant's feed epoch (0 until first advanced), read consistently. */
export async function readFeedEpoch(ports: Ports, tenantId: string): Promise<number> {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: feedEpochKey(tenantId), ConsistentRead: true }),
  );
  return typeof Item?.epoch === "number" ? Item.epoch : 0;
}
