import { createHash } from "node:crypto";

/** The hash every chain starts from. */
export const genesisHash = "0".repeat(64);

/**
 * JSON with object keys sorted at every level: one byte string per value, whatever the key order. Fields that are
 * undefined are left out; any other value JSON cannot hold (a function, undefined in an array) is `null`, and so is
 * a hole in an array (the form before wrote nothing there; nothing hashed has holes: it comes from JSON, zod or the
 * store). Every chain and feed hash is over these bytes, so they never change; built in one pass (the PEPs and the
 * control plane hash every snapshot page and every delta with it).
 */
export function canonicalJson(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) {
    let out = "[";
    for (let index = 0; index < value.length; index++) out += (index === 0 ? "" : ",") + canonicalJson(value[index]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  // Default sort order is by UTF-16 code units, as `<` compares strings.
  const keys = Object.keys(record).sort();
  let out = "{";
  let first = true;
  for (const key of keys) {
    const field = record[key];
    if (field === undefined) continue;
    out += `${first ? "" : ","}${JSON.stringify(key)}:${canonicalJson(field)}`;
    first = false;
  }
  return `${out}}`;
}

/** A record's link: SHA-256 over the previous link and the record's canonical JSON. */
export const chainHash = (previousHash: string, record: unknown): string =>
  createHash("sha256").update(previousHash).update("\n").update(canonicalJson(record)).digest("hex");
