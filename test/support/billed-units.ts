/**
 * What DynamoDB bills for a transaction, where DynamoDB Local reports less. DynamoDB Local's `ConsumedCapacity` for
 * TransactWriteItems sums, per table, only the distinct unit counts of its items: ten puts of a 1.5 KB item report 4
 * units where DynamoDB bills 40 (2 units per KB of each item, `test/billed-units.test.ts` shows it). Single-item
 * calls and the batch calls are reported right. Every meter of the benches counts transactions through this.
 *
 * The correction needs each item's size: a put's is its item's (DynamoDB's item size: attribute names and values,
 * as "Item sizes and formats" documents it); a delete's, an update's or a condition check's is the stored item's, which
 * the request does not carry. Their units are taken from what is left of the reported figure once the puts' distinct
 * units are taken out: exact unless one of them has the unit count of another item of its table (then it is not
 * counted: a lower bound). A put that replaces a larger item is billed the larger size by DynamoDB, counted here at its
 * own. Index copies are left as reported (a transaction of the hot path writes none: `test/identity-history.test.ts`).
 */

const utf8 = (text: string) => Buffer.byteLength(text, "utf8");

/**
 * A number's size: 1 byte per two significant digits, plus 1. Leading zeros do not count; an integer's trailing zeros
 * do, as DynamoDB Local counts them (`test/billed-units.test.ts`). The code writes integers.
 */
function numberBytes(value: number | bigint): number {
  const text = String(value).replace(/^-/, "").replace(/e.*$/i, "");
  const digits = (text.includes(".") ? text.replace(".", "").replace(/0+$/, "") : text).replace(/^0+/, "");
  return Math.ceil(Math.max(1, digits.length) / 2) + 1;
}

/** The size of an attribute value, as the document client would marshal it. */
export function valueBytes(value: unknown): number {
  if (value === null || typeof value === "boolean") return 1;
  if (typeof value === "string") return utf8(value);
  if (typeof value === "number" || typeof value === "bigint") return numberBytes(value);
  if (value instanceof Uint8Array) return value.length;
  if (value instanceof Set) return [...value].reduce<number>((sum, each) => sum + valueBytes(each), 0);
  // Lists and maps: 3 bytes, and 1 byte for each element besides its own size (a map's element its name too).
  if (Array.isArray(value)) return 3 + value.reduce<number>((sum, each) => sum + 1 + valueBytes(each), 0);
  if (typeof value === "object") {
    return (
      3 +
      Object.entries(value as Record<string, unknown>)
        .filter(([, each]) => each !== undefined)
        .reduce((sum, [name, each]) => sum + 1 + utf8(name) + valueBytes(each), 0)
    );
  }
  return 0;
}

/** An item's size: each attribute's name and value. */
export const itemBytes = (item: Record<string, unknown>) =>
  Object.entries(item)
    .filter(([, value]) => value !== undefined)
    .reduce((sum, [name, value]) => sum + utf8(name) + valueBytes(value), 0);

/** Units of a transactional write of an item of `bytes`: 2 per KB begun. */
export const transactionalWriteUnits = (bytes: number) => 2 * Math.max(1, Math.ceil(bytes / 1024));

type TransactItem = {
  readonly Put?: { readonly TableName?: string; readonly Item?: Record<string, unknown> };
  readonly Update?: { readonly TableName?: string };
  readonly Delete?: { readonly TableName?: string };
  readonly ConditionCheck?: { readonly TableName?: string };
};
export interface ReportedCapacity {
  readonly TableName?: string;
  readonly CapacityUnits?: number;
  readonly Table?: { readonly CapacityUnits?: number };
  readonly GlobalSecondaryIndexes?: Record<string, { readonly CapacityUnits?: number }>;
}

/**
 * The capacity DynamoDB bills for a TransactWriteItems, in the form it reports it (`ReturnConsumedCapacity: INDEXES`),
 * from the request and what DynamoDB Local reported for it: per table, `Table` corrected, indexes as reported,
 * `CapacityUnits` their sum.
 */
export function billedTransaction(input: { readonly TransactItems?: readonly TransactItem[] }, reported: readonly ReportedCapacity[]) {
  return reported.map((entry): ReportedCapacity => {
    const items = (input.TransactItems ?? []).filter(
      (item) => (item.Put ?? item.Update ?? item.Delete ?? item.ConditionCheck)?.TableName === entry.TableName,
    );
    const puts = items.flatMap((item) => (item.Put?.Item ? [transactionalWriteUnits(itemBytes(item.Put.Item))] : []));
    const indexes = Object.values(entry.GlobalSecondaryIndexes ?? {}).reduce((sum, index) => sum + (index.CapacityUnits ?? 0), 0);
    const reportedTable = entry.Table?.CapacityUnits ?? (entry.CapacityUnits ?? 0) - indexes;
    const others = items.length > puts.length ? Math.max(0, reportedTable - [...new Set(puts)].reduce((sum, units) => sum + units, 0)) : 0;
    // Never below what DynamoDB Local reported (a put that replaced a larger item is billed that item's size).
    const table = Math.max(reportedTable, puts.reduce((sum, units) => sum + units, 0) + others);
    return { ...entry, CapacityUnits: table + indexes, Table: { CapacityUnits: table } };
  });
}
