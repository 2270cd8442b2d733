/**
 * The benches' transaction meter (test/support/billed-units.ts) against DynamoDB Local: its item sizes bill what
 * DynamoDB Local bills for single writes (which it reports right), and a transaction is counted item by item, where
 * DynamoDB Local reports only the distinct unit counts of a table's items.
 */
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { billedTransaction, itemBytes, type ReportedCapacity } from "./support/billed-units.ts";

const table = `billed${Date.now().toString(36)}`;
let db: DynamoDBDocumentClient;
beforeAll(async () => {
  const raw = new DynamoDBClient({
    endpoint: inject("dynamoEndpoint"),
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
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
  seq: 1200,
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
  it("sizes items as DynamoDB Local bills single writes, on both sides of each KB", async () => {
    const checked: [number, number | undefined, number][] = [];
    for (const pad of [0, 500, 700, 740, 760, 780, 800, 1700, 1770, 1790, 1810, 1830, 2900]) {
      const written = item(pad);
      const { ConsumedCapacity } = await db.send(new PutCommand({ TableName: table, Item: written, ReturnConsumedCapacity: "TOTAL" }));
      checked.push([itemBytes(written), units(ConsumedCapacity), Math.ceil(itemBytes(written) / 1024)]);
    }
    // The sizes cross 1 KB and 2 KB within the pads: both sides of a boundary are billed as computed.
    expect(new Set(checked.map(([, billed]) => billed))).toEqual(new Set([1, 2, 3, 4]));
    expect(checked.map(([bytes, billed]) => [bytes, billed])).toEqual(checked.map(([bytes, , computed]) => [bytes, computed]));
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
    expect(billedTransaction(input, ConsumedCapacity).map(units)).toEqual([2 * sum(alone)]);
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
    expect(billedTransaction(input, ConsumedCapacity).map(units)).toEqual([8]);
  });
});
