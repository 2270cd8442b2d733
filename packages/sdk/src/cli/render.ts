/** Human output: aligned tables for lists, `key  value` lines for one resource. */

export type Column<T> = readonly [header: string, value: (row: T) => unknown];

/** One cell: `-` for nothing, lists comma-joined, label maps as `k=v`, other objects as JSON. */
export function cell(value: unknown): string {
  if (value === undefined || value === null || value === "") return "-";
  if (Array.isArray(value)) return value.length === 0 ? "-" : value.map(cell).join(",");
  if (typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return "-";
    if (entries.every(([, v]) => typeof v === "string")) return entries.map(([k, v]) => `${k}=${v}`).join(",");
    return JSON.stringify(value);
  }
  return String(value);
}

export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  if (rows.length === 0) return "(none)";
  const cells = [columns.map(([header]) => header.toUpperCase()), ...rows.map((row) => columns.map(([, value]) => cell(value(row))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return cells.map((line) => line.map((text, i) => (i === line.length - 1 ? text : text.padEnd(widths[i]!))).join("  ")).join("\n");
}

/** A resource as aligned `key  value` lines, in the given order, skipping empty fields. */
export function details(record: object, keys?: readonly string[]): string {
  const entries = Object.entries(record).filter(([key, value]) => (keys ? keys.includes(key) : true) && value !== undefined);
  if (keys) entries.sort(([a], [b]) => keys.indexOf(a) - keys.indexOf(b));
  const width = Math.max(0, ...entries.map(([key]) => key.length));
  return entries.map(([key, value]) => `${key.padEnd(width)}  ${cell(value)}`).join("\n");
}

/** The line after a page that has more: how to fetch the next one. */
export const nextHint = (next: string | undefined) => (next ? `\n(more: --cursor ${next}, or --all)` : "");
