import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type { DeviceRef } from "../catalogue/catalogue.ts";
import { hasIdKind } from "../id.ts";
import type { History } from "../identity/fold.ts";
import type { Ports } from "../ports.ts";
import { storedForm } from "../store/form.ts";
import { Lru } from "../store/lru.ts";
import { deviceSchema, type Device } from "./device.ts";
import { externalIdAlias, iccidOtherSpelling, withLuhnDigit, type IdentifierKind } from "./identifiers.ts";
import { readBindings } from "./bindings.ts";
import { aliasKey, deviceKey, deviceListKey } from "./keys.ts";

export interface StoredDevice {
  readonly device: Device;
  readonly history: History;
}

/**
 * The identity-table item of a device: its public fields and its fact history. The history is
 * stored deflated (a binary attribute): it is most of the item (a full window of 32 facts is
 * about 4 to 6 KB of JSON, 1 to 2 KB deflated), every fact rewrites the item, and DynamoDB bills a
 * write by the item's size in KB (twice inside a transaction). No query reads into it: the
 * `byTenant` index does not copy it, and only the fold (`readDevice`) opens it.
 */
export const deviceItem = (device: Device, history: History) => ({
  ...deviceKey(device.tenantId, device.id),
  ...deviceListKey(device.tenantId, device.id),
  ...device,
  history: encodeHistory(history),
  format: deviceFormat,
});

/**
 * The stored form of a device item this code reads and writes (its `format`; an item without one is of form 1). During
 * a deploy, instances of the release before and the release after run side by side on the same items; every change of a
 * device rewrites its whole item from what the reading code knows of it, so code that read a newer form would write it
 * back without what it does not know (an attribute, a history field such as `receivedFacts` was to the code before
 * b82f8df, a fact type its fold skips), silently (review 140). A release that changes what the item holds raises this
 * form, after a release that reads the new form and still writes the old one (README, Rollback); code older than a form
 * refuses its items (`storedForm`): the API answers 503, and the applier leaves the fact to be retried, by the newer
 * code once the deploy ends. A rollback past the form refuses the same way, and changes no device until redeployed.
 */
export const deviceFormat = 1;

/** A stored device item's public fields, refused when of a form this code does not know (`deviceFormat`). */
export function storedDevice(item: Record<string, unknown>): Device {
  storedForm(item, deviceFormat, `Device ${String(item.id)}`);
  return deviceSchema.parse(item);
}

export const encodeHistory = (history: History): Uint8Array => deflateRawSync(JSON.stringify(history));

/** A stored history: deflated JSON, or (items written before it was compressed) a map. */
export function decodeHistory(stored: unknown): History {
  if (stored instanceof Uint8Array) return JSON.parse(inflateRawSync(stored).toString("utf8")) as History;
  return stored as History;
}

/**
 * Devices as this process last wrote or read them, per store. Every write of a device is
 * conditional on its revision, so a stale entry (another process wrote since) costs one
 * failed condition and a fresh read, never a lost update. Bounded by entries and by their
 * size (a device with a long fact history weighs tens of KB): at most `deviceCacheBytes` of
 * serialized devices, about twice that on the heap.
 */
export const deviceCacheEntries = 20_000;
export const deviceCacheBytes = 24 * 2 ** 20;
/** A device's weight: its serialized size (string lengths of its facts dominate). */
const weighDevice = (stored: StoredDevice) => JSON.stringify(stored).length;
const recentDevices = new WeakMap<object, Lru<string, StoredDevice>>();
export const deviceCacheOf = (ports: Ports) => {
  let cache = recentDevices.get(ports.db);
  if (!cache) recentDevices.set(ports.db, (cache = new Lru(deviceCacheEntries, { maxWeight: deviceCacheBytes, weigh: weighDevice })));
  return cache;
};
const recentOf = deviceCacheOf;

export function rememberDevice(ports: Ports, stored: StoredDevice): void {
  recentOf(ports).set(`${stored.device.tenantId}|${stored.device.id}`, stored);
}

export function forgetDevice(ports: Ports, tenantId: string, deviceId: string): void {
  recentOf(ports).delete(`${tenantId}|${deviceId}`);
}

/** This process's copy of the device, if it holds one (it may be stale: another instance may have written since). */
export const cachedDevice = (ports: Ports, tenantId: string, deviceId: string): StoredDevice | undefined =>
  recentOf(ports).get(`${tenantId}|${deviceId}`);

/** The device as last seen by this process, or read (consistently) when unknown. */
export async function recentDevice(ports: Ports, tenantId: string, deviceId: string): Promise<StoredDevice | undefined> {
  return recentOf(ports).get(`${tenantId}|${deviceId}`) ?? readDevice(ports, tenantId, deviceId);
}

export async function readDevice(ports: Ports, tenantId: string, deviceId: string): Promise<StoredDevice | undefined> {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.identity, Key: deviceKey(tenantId, deviceId), ConsistentRead: true }),
  );
  if (!Item) return undefined;
  const { history, ...rest } = Item;
  const stored = { device: storedDevice(rest), history: decodeHistory(history) };
  rememberDevice(ports, stored);
  return stored;
}

/** The IMSI inside an EAP-SIM/AKA NAI (`0<IMSI>@wlan...`, permanent identities only) or a SUPI (`imsi-<digits>`). */
export function imsiOf(identity: string): string | undefined {
  const supi = /^imsi-(\d{6,15})$/.exec(identity);
  if (supi) return supi[1];
  const nai = /^([016])(\d{6,15})@/.exec(identity);
  return nai ? nai[2] : undefined;
}

/**
 * Every identifier a reference carries, normalized as devices are registered (ICCID without
 * its F padding, MSISDN with +, the IMSI inside a SUPI or permanent NAI), firmest first.
 */
export function refIdentifiers(ref: DeviceRef): { kind: IdentifierKind; value: string }[] {
  const imsi = ref.imsi ?? (ref.supi && imsiOf(ref.supi)) ?? (ref.nai && imsiOf(ref.nai));
  const msisdn = ref.msisdn && (ref.msisdn.startsWith("+") ? ref.msisdn : `+${ref.msisdn}`);
  const iccid = ref.iccid?.replace(/F$/i, "");
  const candidates: [IdentifierKind, string | undefined][] = [
    ["eid", ref.eid],
    ["iccid", iccid],
    // The same SIM spelled with or without its check digit, as another source or the registration spelled it.
    ["iccid", iccid && iccidOtherSpelling(iccid)],
    ["imsi", imsi],
    ["msisdn", msisdn],
    ["externalId", ref.externalId && externalIdAlias(ref.externalId)],
    ["imei", ref.imei && imeiAlias(ref.imei)],
    ["credential", ref.credential?.toLowerCase()],
  ];
  const found = candidates.flatMap(([kind, value]) => (value ? [{ kind, value }] : []));
  // The SIM is the root of trust: an IMEI is what the equipment claims, unauthenticated. A reference naming the SIM
  // (or its IoT SAFE credential) resolves by the SIM only; the IMEI identifies only a report that names nothing else.
  return found.some((identifier) => identifier.kind !== "imei") ? found.filter((identifier) => identifier.kind !== "imei") : found;
}

/**
 * Resolved aliases, per process. An alias moves when its device is revoked (released, then registered again), when
 * its IMEI changes and when its eUICC's profiles are installed or deleted: this process forgets what it released, the
 * applier re-resolves, uncached, a fact whose cached device turns out revoked, and an entry lives `aliasCacheMs`, so
 * another instance's move shows within that.
 */
export const aliasCacheMs = 60_000;
const resolvedAliases = new WeakMap<object, Lru<string, { readonly deviceId: string; readonly until: number }>>();
const aliasCache = (ports: Ports) => {
  let cache = resolvedAliases.get(ports.db);
  if (!cache) resolvedAliases.set(ports.db, (cache = new Lru(100_000)));
  return cache;
};

export function forgetAliases(ports: Ports, tenantId: string, aliases: readonly { kind: IdentifierKind; value: string }[]): void {
  for (const { kind, value } of aliases) aliasCache(ports).delete(aliasKey(tenantId, kind, value).pk);
}

/**
 * The 15-digit IMEI an alias is kept under: an IMEISV (16), a bare 14-digit IMEI or one reported with the spare digit in
 * place of the check digit (15, zero last: TS 23.003 §6.2.1) or any other 15th digit gets its Luhn check digit (review
 * 119: the spare digit's spelling was an alias of its own, and the same handset was not found by its IMEI).
 */
export function imeiAlias(imei: string): string {
  // Any other 15th digit too: the handset is its TAC and serial number, as the fold and ingestion see it (review 123).
  return withLuhnDigit(imei.slice(0, 14));
}

async function lookup(ports: Ports, key: { pk: string; sk: string }, cacheable: boolean): Promise<string | undefined> {
  const cache = aliasCache(ports);
  const known = cacheable ? cache.get(key.pk) : undefined;
  if (known && known.until > Date.now()) return known.deviceId;
  // Asked afresh (not from the cache), asked of the store as it is now: an eventually consistent read may still name the
  // device whose revocation released the alias (review 97).
  const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.identity, Key: key, ConsistentRead: !cacheable }));
  const deviceId = typeof Item?.deviceId === "string" ? Item.deviceId : undefined;
  // Read afresh or not, the answer is the newest this instance has: a stale entry would send the next fact astray again.
  if (deviceId) cache.set(key.pk, { deviceId, until: Date.now() + aliasCacheMs });
  else cache.delete(key.pk);
  return deviceId;
}

/**
 * Resolves whatever identifies the device to its id, in order of how firmly each names it:
 * device id, EID, ICCID, IMSI (also inside NAI and SUPI forms), MSISDN, IMEI, then the IP
 * address it holds now. Pseudonym and re-authentication NAIs rotate and cannot be resolved.
 */
export async function resolveDevice(ports: Ports, tenantId: string, ref: DeviceRef, fresh = false): Promise<string | undefined> {
  if (ref.deviceId && hasIdKind("device", ref.deviceId)) return ref.deviceId;
  const identifiers = refIdentifiers(ref);
  for (const { kind, value } of identifiers) {
    const found = await lookup(ports, aliasKey(tenantId, kind, value), !fresh);
    if (found) return found;
  }
  // Released by a revocation and not registered again: the revoked device keeps its late reports.
  for (const { kind, value } of identifiers) {
    const { Items } = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.identity,
        KeyConditionExpression: "pk = :pk AND begins_with(sk, :released)",
        ExpressionAttributeValues: { ":pk": aliasKey(tenantId, kind, value).pk, ":released": "released#" },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: fresh,
      }),
    );
    if (typeof Items?.[0]?.deviceId === "string") return Items[0].deviceId;
  }
  // An address moves between devices: always ask the store (where bindings are kept now, else where they were before).
  // Only for a reference naming nothing else: one naming a SIM or a subscription this tenant does not know is not
  // some device's because it claims that device's address (review 60), as it is not by its IMEI.
  if (!ref.ip || identifiers.length > 0) return undefined;
  const binding = (await readBindings(ports, ports.tables.identity, tenantId, [ref.ip])).get(ref.ip)?.item;
  return typeof binding?.deviceId === "string" ? binding.deviceId : undefined;
}
