import { createHash } from "node:crypto";

/** The hash every chain starts from. */
export const genesisHash = "0".repeat(64);

/** JSON with object keys sorted at every level: one byte string per value, whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, field]) => field !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, field]) => `${JSON.stringify(key)}:${canonicalJson(field)}`).join(",")}}`;
}

/** A record's link: SHA-256 over the previous link and the record's canonical JSON. */
export const chainHash = (previousHash: string, record: unknown): string =>
  createHash("sha256").update(previousHash).update("\n").update(canonicalJson(record)).digest("hex");
