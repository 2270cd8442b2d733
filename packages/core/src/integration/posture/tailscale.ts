/**
 * Tailscale custom posture attributes: for a device mapped to a tailnet node (label
 * `tailscale/node`), simroot's state, score and roaming flag set as `custom:` attributes with
 * Tailscale's API (`POST /api/v2/device/{deviceId}/attributes/{attributeKey}`), so tailnet
 * policy (`srcPosture`) can require `custom:simrootScore >= 60`. Only the attributes that differ
 * from what was last pushed are sent; the last pushed values are kept in the store, not in memory.
 */
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { systemContext } from "../../context.ts";
import { readDevice } from "../../device/store.ts";
import { SimrootError } from "../../error.ts";
import type { DomainEvent } from "../../event/event.ts";
import type { Ports } from "../../ports.ts";
import { delivered, recordDelivery } from "../delivery.ts";
import { postureOf, tailscaleNodeLabel, type Posture } from "./posture.ts";

export interface TailscaleSettings {
  readonly tenantId: string;
  readonly apiUrl: string;
  readonly apiKey: string;
}

export type PostureAttributes = Record<`custom:${string}`, string | number | boolean>;

export const postureAttributes = (posture: Posture): PostureAttributes => ({
  "custom:simrootState": posture.state,
  "custom:simrootScore": posture.score,
  "custom:simrootRoaming": posture.roaming,
});

/** Sets one custom attribute on one node; Tailscale answers 200 with the attribute. */
export async function setTailscaleAttribute(settings: TailscaleSettings, node: string, key: string, value: string | number | boolean) {
  const response = await fetch(`${settings.apiUrl}/api/v2/device/${encodeURIComponent(node)}/attributes/${encodeURIComponent(key)}`, {
    method: "POST",
    headers: { authorization: `Bearer ${settings.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ value, comment: "simroot posture" }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) {
    throw new SimrootError("integration.tailscale_failed", "unavailable", `Tailscale answered ${response.status} for ${key} on ${node}`, {
      detail: { status: response.status, body: (await response.text()).slice(0, 500) },
    });
  }
}

const pushedKey = (tenantId: string, deviceId: string) => ({ pk: `I#${tenantId}#tailscale`, sk: `pushed#${deviceId}` });

export async function syncPostureToTailscale(
  ports: Ports,
  settings: TailscaleSettings,
  event: DomainEvent,
  options: { onlyChanged?: boolean } = {},
): Promise<string[]> {
  if (event.tenantId !== settings.tenantId) return [];
  if (await delivered(ports, event.tenantId, "tailscale", event.id)) return [];
  const stored = await readDevice(ports, event.tenantId, event.subject);
  const node = stored?.device.labels[tailscaleNodeLabel];
  if (!stored || !node) return [];
  const attributes = postureAttributes(postureOf(stored.device));
  const key = pushedKey(event.tenantId, stored.device.id);
  // `onlyChanged: false` (the bench's baseline) sends every attribute and keeps no record.
  const onlyChanged = options.onlyChanged ?? true;
  const { Item } = onlyChanged
    ? await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: key, ConsistentRead: true }))
    : { Item: undefined };
  const last = Item?.node === node ? ((Item.attributes ?? {}) as Record<string, unknown>) : {};
  const changed = Object.entries(attributes).filter(([name, value]) => !onlyChanged || last[name] !== value);
  if (changed.length === 0) return [];
  await Promise.all(changed.map(([name, value]) => setTailscaleAttribute(settings, node, name, value)));
  if (onlyChanged) {
    await ports.db.send(
      new PutCommand({ TableName: ports.tables.control, Item: { ...key, node, attributes, at: ports.now().toISOString() } }),
    );
  }
  const set = changed.map(([name]) => name);
  await recordDelivery(ports, systemContext(event.tenantId, "posture-sync", event.requestId), "tailscale", event, {
    deviceId: stored.device.id,
    node,
    set,
    attributes,
  });
  return set;
}
