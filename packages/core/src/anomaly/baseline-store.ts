/**
 * Where baselines live: the flows table (it holds the flow records they learn from), one
 * item per device and one per segment, each bounded (see baseline.ts) and expiring 30 days
 * after it last learned. A device item is replaced under an optimistic condition on its
 * revision (two enforcement points reporting one device at once re-read and fold again); a
 * segment item only ever gains a destination, by a conditional map update that needs no read.
 */
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { flowRetentionSeconds } from "../feed/flows.ts";
import type { Ports } from "../ports.ts";
import { batchGetAll } from "../store/batch-get.ts";
import type { DeviceBaseline, SegmentBaseline } from "./baseline.ts";

export const deviceBaselineKey = (tenantId: string, deviceId: string) => ({ pk: `T#${tenantId}#B#${deviceId}`, sk: "baseline" });
export const segmentBaselineKey = (tenantId: string, segment: string) => ({ pk: `T#${tenantId}#S#${segment}`, sk: "baseline" });

const expiry = (ports: Ports) => Math.floor(ports.now().getTime() / 1000) + flowRetentionSeconds;

export async function readBaselines(ports: Ports, tenantId: string, deviceIds: readonly string[], segments: readonly string[]) {
  const items = await batchGetAll(ports, ports.tables.flows, [
    ...deviceIds.map((id) => deviceBaselineKey(tenantId, id)),
    ...segments.map((segment) => segmentBaselineKey(tenantId, segment)),
  ]);
  const devices = new Map<string, DeviceBaseline>();
  const segmentBaselines = new Map<string, SegmentBaseline>();
  for (const item of items) {
    if (typeof item.deviceId === "string") devices.set(item.deviceId, item.baseline as DeviceBaseline);
    else if (typeof item.segment === "string")
      segmentBaselines.set(item.segment, {
        segment: item.segment,
        since: String(item.since),
        destinations: (item.destinations ?? {}) as Record<string, number>,
      });
  }
  return { devices, segments: segmentBaselines };
}

export async function readBaseline(ports: Ports, tenantId: string, deviceId: string): Promise<DeviceBaseline | undefined> {
  return (await readBaselines(ports, tenantId, [deviceId], [])).devices.get(deviceId);
}

/** Stores `next` if the stored baseline is still at `next.revision`; false when another writer got there first. */
export async function saveBaseline(ports: Ports, tenantId: string, next: DeviceBaseline): Promise<boolean> {
  const stored = { ...next, revision: next.revision + 1 };
  try {
    await ports.db.send(
      new PutCommand({
        TableName: ports.tables.flows,
        Item: {
          ...deviceBaselineKey(tenantId, next.deviceId),
          deviceId: next.deviceId,
          baseline: stored,
          revision: stored.revision,
          expiresAt: expiry(ports),
        },
        ConditionExpression: next.revision === 0 ? "attribute_not_exists(pk)" : "revision = :revision",
        ...(next.revision === 0 ? {} : { ExpressionAttributeValues: { ":revision": next.revision } }),
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** The devices of a segment flagged for one destination new to it (`flagSegment`): an item of its own per destination. */
export const segmentFlagKey = (tenantId: string, segment: string, key: string) => ({
  pk: `T#${tenantId}#S#${segment}`,
  sk: `flagged#${key}`,
});

/**
 * Records `deviceId` among the devices of the segment flagged for each of `keys` (destinations new to the device and the
 * segment), and returns those a `quorum` of distinct devices has now been flagged for, which the segment learns
 * (`learnSegment`). The devices are a set, so one device flagged again (its own baseline forgot the destination) is
 * counted once (review 134: one compromised device flagged three times made the quorum alone); each destination is an
 * item of its own, bounded by the quorum and expiring with the flows, so no window of new hosts fills a shared count
 * and stops the segment learning (review 134: one of 256 did, for good).
 */
export async function flagSegment(
  ports: Ports,
  tenantId: string,
  segment: string,
  deviceId: string,
  keys: readonly string[],
  quorum: number,
) {
  const reached: string[] = [];
  for (const key of keys) {
    try {
      const { Attributes } = await ports.db.send(
        new UpdateCommand({
          TableName: ports.tables.flows,
          Key: segmentFlagKey(tenantId, segment, key),
          UpdateExpression: "ADD devices :device SET expiresAt = :expires",
          ConditionExpression: "attribute_not_exists(devices) OR size(devices) < :quorum OR contains(devices, :id)",
          ExpressionAttributeValues: { ":device": new Set([deviceId]), ":id": deviceId, ":quorum": quorum, ":expires": expiry(ports) },
          ReturnValues: "ALL_NEW",
        }),
      );
      const devices = Attributes?.devices;
      if (devices instanceof Set && devices.size >= quorum) reached.push(key);
    } catch (error) {
      // The quorum was reached before: the segment learned the destination then.
      if (error instanceof ConditionalCheckFailedException) continue;
      throw error;
    }
  }
  return reached;
}

/** Teaches a segment destinations, up to `max` (a full segment stops learning: bounded, judged per device from then on). */
export async function learnSegment(ports: Ports, tenantId: string, segment: string, keys: readonly string[], at: string, max: number) {
  for (const key of keys) {
    try {
      await ports.db.send(
        new UpdateCommand({
          TableName: ports.tables.flows,
          Key: segmentBaselineKey(tenantId, segment),
          UpdateExpression:
            "SET destinations = if_not_exists(destinations, :empty), since = if_not_exists(since, :at), #segment = :segment, expiresAt = :expires ADD learned :one",
          ConditionExpression: "attribute_not_exists(learned) OR learned < :max",
          ExpressionAttributeNames: { "#segment": "segment" },
          ExpressionAttributeValues: { ":empty": {}, ":at": at, ":segment": segment, ":expires": expiry(ports), ":one": 1, ":max": max },
        }),
      );
      await ports.db.send(
        new UpdateCommand({
          TableName: ports.tables.flows,
          Key: segmentBaselineKey(tenantId, segment),
          UpdateExpression: "SET destinations.#key = :minute",
          ConditionExpression: "attribute_not_exists(destinations.#key)",
          ExpressionAttributeNames: { "#key": key },
          ExpressionAttributeValues: { ":minute": Math.floor(Date.parse(at) / 60_000) },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) continue;
      throw error;
    }
  }
}
