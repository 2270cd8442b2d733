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

/**
 * Counts a device of the segment flagged for each of `keys` (a new destination for it and for the segment), and returns
 * those a `quorum` of devices has been flagged for, which the segment learns (`learnSegment`). A device flagged for a
 * destination learns it, so it is counted once. At most `max` destinations are counted (an attacker's device reaching
 * many new hosts does not grow the item past its bound); a count is kept as long as its segment.
 */
export async function flagSegment(ports: Ports, tenantId: string, segment: string, keys: readonly string[], quorum: number, max: number) {
  const reached: string[] = [];
  for (const key of keys) {
    const count = async () =>
      ports.db.send(
        new UpdateCommand({
          TableName: ports.tables.flows,
          Key: segmentBaselineKey(tenantId, segment),
          UpdateExpression: "SET flagged.#key = if_not_exists(flagged.#key, :zero) + :one",
          ConditionExpression: "attribute_exists(flagged) AND (attribute_exists(flagged.#key) OR size(flagged) < :max)",
          ExpressionAttributeNames: { "#key": key },
          ExpressionAttributeValues: { ":zero": 0, ":one": 1, ":max": max },
          ReturnValues: "UPDATED_NEW",
        }),
      );
    try {
      let answer: Awaited<ReturnType<typeof count>>;
      try {
        answer = await count();
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        // No count yet on the segment (the map is made first: a path into a missing map is refused), or the bound.
        await ports.db.send(
          new UpdateCommand({
            TableName: ports.tables.flows,
            Key: segmentBaselineKey(tenantId, segment),
            UpdateExpression: "SET flagged = if_not_exists(flagged, :empty)",
            ExpressionAttributeValues: { ":empty": {} },
          }),
        );
        answer = await count();
      }
      if (Number((answer.Attributes?.flagged as Record<string, unknown> | undefined)?.[key] ?? 0) >= quorum) reached.push(key);
    } catch (error) {
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
