/**
 * The form of canonical JSON every stored chain and feed hash was first computed with (before 2026-12-03): the
 * oracle `chain.test.ts` holds `canonicalJson` to, byte for byte, and the baseline of `bench/feed/hash.ts`.
 */
export function canonicalJsonBefore(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJsonBefore).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, field]) => field !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, field]) => `${JSON.stringify(key)}:${canonicalJsonBefore(field)}`).join(",")}}`;
}
