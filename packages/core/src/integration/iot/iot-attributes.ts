/**
 * A device's SIM identity as AWS IoT thing attributes, within IoT's limits: at most 50
 * attributes on a thing of a thing type, keys `[a-zA-Z0-9_.,@/:#-]{1,128}`, values
 * `[a-zA-Z0-9_.,@/:#=\[\]-]{0,800}`. Label values outside that charset are carried
 * base64url-encoded (`b64:` prefix, reversible); labels beyond the budget are dropped in key
 * order and the thing says so (`simroot.labels-omitted`, and a digest of all labels).
 */
import { createHash } from "node:crypto";
import type { Device } from "../../device/device.ts";
import { canonicalJson } from "../../ledger/chain.ts";

export const maxThingAttributes = 50;
const valueCharset = /^[a-zA-Z0-9_.,@/:#=[\]-]*$/;
const keyCharset = /^[a-zA-Z0-9_.,@/:#-]{1,128}$/;

/** A value IoT accepts as is, or its reversible `b64:` encoding. */
export function attributeValue(value: string): string {
  const fits = valueCharset.test(value) && value.length <= 800 && !value.startsWith("b64:");
  return fits ? value : `b64:${Buffer.from(value, "utf8").toString("base64url")}`;
}

/** Reads back what `attributeValue` wrote. */
export function decodeAttributeValue(value: string): string {
  return value.startsWith("b64:") ? Buffer.from(value.slice(4), "base64url").toString("utf8") : value;
}

export function thingAttributes(device: Device): Record<string, string> {
  const fixed: Record<string, string> = {
    "simroot.device": device.id,
    "simroot.tenant": device.tenantId,
    "simroot.state": device.state,
    ...(device.eid ? { "sim.eid": device.eid } : {}),
    // One EID holds up to 16 profiles; 16 ICCIDs of 20 digits fit in 800 characters.
    ...(device.iccids.length > 0 ? { "sim.iccid": device.iccids.join(",") } : {}),
    ...((device.imei ?? device.identity.imei) ? { "sim.imei": (device.identity.imei ?? device.imei)! } : {}),
  };
  const keys = Object.keys(device.labels)
    .filter((key) => keyCharset.test(`label.${key}`))
    .sort();
  const room = maxThingAttributes - Object.keys(fixed).length;
  const fitsAll = keys.length <= room && keys.length === Object.keys(device.labels).length;
  const kept = fitsAll ? keys : keys.slice(0, room - 2);
  const labels = Object.fromEntries(kept.map((key) => [`label.${key}`, attributeValue(device.labels[key]!)]));
  if (fitsAll) return { ...fixed, ...labels };
  const digest = createHash("sha256").update(canonicalJson(device.labels)).digest("hex");
  const omitted = Object.keys(device.labels).length - kept.length;
  return { ...fixed, ...labels, "simroot.labels-digest": digest, "simroot.labels-omitted": String(omitted) };
}
