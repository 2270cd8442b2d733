/**
 * What DynamoDB bills for a transaction, where DynamoDB Local reports less. DynamoDB Local sizes each action of a
 * TransactWriteItems right (as a single-item call: old and new sizes, index copies), doubles it, and then keeps per
 * table one of each distinct per-item figure (table and index units together): ten puts of a 1.5 KB item report 4
 * units where DynamoDB bills 40 (`test/billed-units.test.ts` shows it). Single-item calls, batch calls and
 * TransactGetItems are reported right. Every meter of the benches counts transactions through this, against
 * DynamoDB Local only (real DynamoDB reports them right).
 *
 * The correction sizes each put by its item (DynamoDB's item size: attribute names and values, as "Item sizes and
 * formats" documents it, and as DynamoDB Local computes it: checked at the byte where each type makes an item cross
 * 1 KB). A delete's, an update's or a condition check's size is the stored item's, which the request does not carry:
 * its units are taken from what is left of the reported figure once the puts' distinct units are taken out. Index
 * copies are left as reported. Both are exact only where no two items of a table can share a figure: a transaction
 * with a non-put item beside another item of its table, or with index units and two or more items of a table, is
 * `ambiguous`, and the meters print how many they met. The commits of attaches and detaches are all puts with no
 * index copy (`test/identity-history.test.ts`): exact. A revocation's are not (its device's and its marker's index
 * copies). A put that replaces a larger item is billed the larger size by DynamoDB, counted here at its own.
 */

const utf8 = (text: string) => Buffer.byteLength(text, "utf8");

/**
 * A number's size, as DynamoDB Local computes it: its digits in base-100 pairs aligned on the decimal point, pairs of
 * zeros trimmed at both ends, a byte a pair, plus 1; a negative number 1 more, zero 1 byte.
 */
function numberBytes(value: number | bigint): number {
  if (Number(value) === 0) return 1;
  const text =
    typeof value === "bigint" || Number.isInteger(value)
      ? BigInt(value).toString()
      : /e/i.test(String(value))
        ? value.toFixed(40)
        : String(value);
  const [whole = "", fraction = ""] = text.replace(/^-/, "").split(".");
  const padded = `${whole.length % 2 === 1 ? "0" : ""}${whole}${fraction}${fraction.length % 2 === 1 ? "0" : ""}`;
  const pairs = (padded.match(/../g) ?? [])
    .join(",")
    .replace(/^(00,)+/, "")
    .replace(/(,00)+$/, "");
  return pairs.split(",").length + 1 + (text.startsWith("-") ? 1 : 0);
}

/** The size of an attribute value, as the document client would marshal it. */
export function valueBytes(value: unknown): number {
  if (value === null || typeof value === "boolean") return 1;
  if (typeof value === "string") return utf8(value);
  if (typeof value === "number" || typeof value === "bigint") return numberBytes(value);
  if (value instanceof Uint8Array) return value.length;
  if (value instanceof Set) return [...value].reduce<number>((sum, each) => sum + valueBytes(each), 0);
  // Lists and maps: 3 bytes, and 1 byte for each element besides its own size (a map's element its name too).
  if (Array.isArray(value))
    return 3 + value.filter((each) => each !== undefined).reduce<number>((sum, each) => sum + 1 + valueBytes(each), 0);
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

const tableOf = (item: TransactItem) => (item.Put ?? item.Update ?? item.Delete ?? item.ConditionCheck)?.TableName;
const indexUnits = (entry: ReportedCapacity) =>
  Object.values(entry.GlobalSecondaryIndexes ?? {}).reduce((sum, index) => sum + (index.CapacityUnits ?? 0), 0);

/**
 * The capacity DynamoDB bills for a TransactWriteItems, in the form it reports it (`ReturnConsumedCapacity: INDEXES`),
 * from the request and what DynamoDB Local reported for it: per table, `Table` corrected, indexes as reported,
 * `CapacityUnits` their sum. `ambiguous`: whether a table's figure may still be short (see the module's comment).
 */
export function billedTransaction(input: { readonly TransactItems?: readonly TransactItem[] }, reported: readonly ReportedCapacity[]) {
  let ambiguous = false;
  const entries = reported.map((entry): ReportedCapacity => {
    const items = (input.TransactItems ?? []).filter((item) => tableOf(item) === entry.TableName);
    const puts = items.flatMap((item) => (item.Put?.Item ? [transactionalWriteUnits(itemBytes(item.Put.Item))] : []));
    const indexes = indexUnits(entry);
    if ((items.length > puts.length && items.length > 1) || (indexes > 0 && items.length > 1)) ambiguous = true;
    const reportedTable = entry.Table?.CapacityUnits ?? (entry.CapacityUnits ?? 0) - indexes;
    const others = items.length > puts.length ? Math.max(0, reportedTable - [...new Set(puts)].reduce((sum, units) => sum + units, 0)) : 0;
    // Never below what DynamoDB Local reported (a put that replaced a larger item is billed that item's size).
    const table = Math.max(reportedTable, puts.reduce((sum, units) => sum + units, 0) + others);
    const { TableName, GlobalSecondaryIndexes } = entry;
    return {
      TableName,
      CapacityUnits: table + indexes,
      Table: { CapacityUnits: table },
      ...(GlobalSecondaryIndexes ? { GlobalSecondaryIndexes } : {}),
    };
  });
  return { entries, ambiguous };
}
