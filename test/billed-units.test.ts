/**
 * The benches' transaction meter (test/support/billed-units.ts) against DynamoDB Local: its item sizes are DynamoDB
 * Local's to the byte (single writes, which it reports right), and a transaction is counted item by item, where
 * DynamoDB Local reports only the distinct figures of a table's items.
 */
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { dynamoLocalCredentials } from "@simroot/core";
import { billedTransaction, itemBytes, type ReportedCapacity } from "./support/billed-units.ts";

const table = `billed${Date.now().toString(36)}`;
let db: DynamoDBDocumentClient;
beforeAll(async () => {
  const raw = new DynamoDBClient({
    endpoint: inject("dynamoEndpoint"),
    region: "us-east-1",
    credentials: dynamoLocalCredentials(),
  });
  db = DynamoDBDocumentClient.from(raw);
  await raw.send(
    new CreateTableCommand({
      TableName: table,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
    }),
  );
});

let serial = 0;
/** An item of every attribute type the code writes, grown by `pad` bytes of a string. */
const item = (pad: number) => ({
  pk: `item-${++serial}`,
  revision: 1234567,
  seq: 1201,
  by: { shard: 7, seq: 120 },
  labels: ["a", "bc"],
  flags: new Set(["x", "y"]),
  ok: true,
  none: null,
  history: new Uint8Array(200).fill(7),
  pad: "p".repeat(pad),
});

const units = (capacity: unknown) => (capacity as ReportedCapacity).CapacityUnits;

describe("the benches' transaction meter", () => {
  it("sizes items as DynamoDB Local does, to the byte where each kind of value makes an item cross 1 KB", async () => {
    const values: Record<string, unknown> = {
      string: "héllo",
      integer: 1234567,
      "integer ending in zeros": 1200,
      "epoch seconds": 1780000000,
      zero: 0,
      negative: -42,
      fraction: 1.5,
      map: { shard: 7, seq: 120, name: "a" },
      list: ["a", "bc", 3],
      "string set": new Set(["x", "yz"]),
      binary: new Uint8Array(200).fill(7),
      boolean: true,
      null: null,
    };
    const billedUnits = async (padded: Record<string, unknown>) =>
      units((await db.send(new PutCommand({ TableName: table, Item: padded, ReturnConsumedCapacity: "TOTAL" }))).ConsumedCapacity);
    const found: Record<string, [number, number]> = {};
    for (const [kind, value] of Object.entries(values)) {
      const at = (pad: number) => ({ pk: `flip-${++serial}`.padEnd(16, "x"), value, pad: "p".repeat(pad) });
      // The smallest pad DynamoDB Local bills 2 units for (1 below it): the item is 1,025 bytes there.
      let [low, high] = [0, 1100];
      while (high - low > 1) {
        const middle = (low + high) >> 1;
        if ((await billedUnits(at(middle))) === 1) low = middle;
        else high = middle;
      }
      found[kind] = [itemBytes(at(low)), itemBytes(at(high))];
    }
    expect(found).toEqual(Object.fromEntries(Object.keys(values).map((kind) => [kind, [1024, 1025]])));
  });

  it("counts every item of a transaction, where DynamoDB Local reports a table's distinct unit counts", async () => {
    const items = [item(1200), item(1200), item(1200), item(100), item(2900)];
    // Each alone (a copy under another key): what DynamoDB Local bills a single write of it.
    const alone = [];
    for (const each of items) {
      const { ConsumedCapacity } = await db.send(
        new PutCommand({ TableName: table, Item: { ...each, pk: `${each.pk}-alone` }, ReturnConsumedCapacity: "TOTAL" }),
      );
      alone.push(units(ConsumedCapacity)!);
    }
    const input = {
      TransactItems: items.map((each) => ({ Put: { TableName: table, Item: each } })),
      ReturnConsumedCapacity: "INDEXES" as const,
    };
    const { ConsumedCapacity = [] } = await db.send(new TransactWriteCommand(input));
    // In a transaction each is billed twice its units.
    const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
    const billed = billedTransaction(input, ConsumedCapacity);
    expect(billed.entries.map(units)).toEqual([2 * sum(alone)]);
    expect(billed.ambiguous).toBe(false); // puts, no index copies: counted exactly
    // What DynamoDB Local says, each distinct count once: the reason for the meter.
    expect(ConsumedCapacity.map(units)).toEqual([2 * sum([...new Set(alone)])]);
    expect(sum([...new Set(alone)])).toBeLessThan(sum(alone));
  });

  it("takes a delete's units from what is left of the reported figure", async () => {
    const stored = item(1700);
    await db.send(new PutCommand({ TableName: table, Item: stored }));
    const input = {
      TransactItems: [
        { Delete: { TableName: table, Key: { pk: stored.pk } } },
        { Put: { TableName: table, Item: item(100) } },
        { Put: { TableName: table, Item: item(100) } },
      ],
      ReturnConsumedCapacity: "INDEXES" as const,
    };
    const { ConsumedCapacity = [] } = await db.send(new TransactWriteCommand(input));
    // The deleted item's 2 KB (4), and the two small puts (2 each).
    const billed = billedTransaction(input, ConsumedCapacity);
    expect(billed.entries.map(units)).toEqual([8]);
    // A delete's figure could have matched another item's (then lost in the report): said, not hidden.
    expect(billed.ambiguous).toBe(true);
  });
});
