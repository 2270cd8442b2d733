import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type { DeviceRef } from "../catalogue/catalogue.ts";
import { hasIdKind } from "../id.ts";
import type { History } from "../identity/fold.ts";
import type { Ports } from "../ports.ts";
import { deviceSchema, type Device } from "./device.ts";
import type { IdentifierKind } from "./identifiers.ts";
import { aliasKey, bindingKey, deviceKey, deviceListKey } from "./keys.ts";

export interface StoredDevice {
  readonly device: Device;
  readonly history: History;
}

/** The identity-table item of a device: its public fields and its fact history. */
export const deviceItem = (device: Device, history: History) => ({
  ...deviceKey(device.tenantId, device.id),
  ...deviceListKey(device.tenantId, device.id),
  ...device,
  history,
});

export async function readDevice(ports: Ports, tenantId: string, deviceId: string): Promise<StoredDevice | undefined> {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.identity, Key: deviceKey(tenantId, deviceId), ConsistentRead: true }),
  );
  if (!Item) return undefined;
  const { history, ...rest } = Item;
  return { device: deviceSchema.parse(rest), history: history as History };
}

/** The IMSI inside an EAP-SIM/AKA NAI (`0<IMSI>@wlan...`, permanent identities only) or a SUPI (`imsi-<digits>`). */
export function imsiOf(identity: string): string | undefined {
  const supi = /^imsi-(\d{6,15})$/.exec(identity);
  if (supi) return supi[1];
  const nai = /^([016])(\d{6,15})@/.exec(identity);
  return nai ? nai[2] : undefined;
}

async function lookup(ports: Ports, key: { pk: string; sk: string }): Promise<string | undefined> {
  const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.identity, Key: key }));
  return typeof Item?.deviceId === "string" ? Item.deviceId : undefined;
}

/**
 * Resolves whatever identifies the device to its id, in order of how firmly each names it:
 * device id, EID, ICCID, IMSI (also inside NAI and SUPI forms), MSISDN, IMEI, then the IP
 * address it holds now. Pseudonym and re-authentication NAIs rotate and cannot be resolved.
 */
export async function resolveDevice(ports: Ports, tenantId: string, ref: DeviceRef): Promise<string | undefined> {
  if (ref.deviceId && hasIdKind("device", ref.deviceId)) return ref.deviceId;
  const imsi = ref.imsi ?? (ref.supi && imsiOf(ref.supi)) ?? (ref.nai && imsiOf(ref.nai));
  const msisdn = ref.msisdn && (ref.msisdn.startsWith("+") ? ref.msisdn : `+${ref.msisdn}`);
  const candidates: [IdentifierKind, string | undefined][] = [
    ["eid", ref.eid],
    ["iccid", ref.iccid?.replace(/F$/i, "")],
    ["imsi", imsi],
    ["msisdn", msisdn],
    ["imei", ref.imei?.length === 16 ? undefined : ref.imei],
  ];
  for (const [kind, value] of candidates) {
    if (!value) continue;
    const found = await lookup(ports, aliasKey(tenantId, kind, value));
    if (found) return found;
  }
  return ref.ip ? lookup(ports, bindingKey(tenantId, ref.ip)) : undefined;
}
