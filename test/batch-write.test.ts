/**
 * Idempotent puts in bulk (core store/batch-write.ts), which the history writes every stream batch with (two items per
 * committed record): a thousand records' items must land within one invocation, whatever the store leaves unprocessed,
 * without piling more than a few calls on one partition at once, and a call the store keeps refusing fails the batch
 * only once nothing else is still being written (the stream then gives the batch again).
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { documentClient, ensureTables, tableNames } from "@simroot/core";
import { batchPutAll } from "@simroot/core/store/batch-write";

const endpoint = inject("dynamoEndpoint");
const region = "us-east-1";
const db = documentClient({ endpoint, region });
const tables = tableNames(`bulk${process.pid}_`);

beforeAll(() => ensureTables(db, tables));
afterAll(() => db.destroy());

type Request = { PutRequest: { Item: Record<string, unknown> } };

/** An item's sort key, marshalled or not (the document client marshals in a middleware of the same step). */
const sortKey = (request: Request) => {
  const sk = request.PutRequest.Item.sk;
  return typeof sk === "object" && sk !== null ? (sk as { S?: string }).S : sk;
};

/** A client over the same store whose BatchWriteItem calls are watched, slowed and, as `answer` says, partly refused. */
function watchedClient(answer: (requests: Request[], call: number) => "write" | "half" | "refuse") {
  const client = documentClient({ endpoint, region });
  const seen = { calls: 0, inFlight: 0, maxInFlight: 0, inFlightAtRefusal: [] as number[] };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if ((context as { commandName?: string }).commandName !== "BatchWriteItemCommand") return next(args);
      const call = ++seen.calls;
      seen.inFlight += 1;
      seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 15));
        const input = args.input as { RequestItems: Record<string, Request[]> };
        const [table, requests] = Object.entries(input.RequestItems)[0]!;
        const what = answer(requests, call);
        if (what === "refuse") {
          seen.inFlightAtRefusal.push(seen.inFlight - 1);
          throw Object.assign(new Error("Throughput exceeds the current capacity"), {
            name: "ProvisionedThroughputExceededException",
            $metadata: { httpStatusCode: 400 },
          });
        }
        if (what === "write") return await next(args);
        // As DynamoDB does under load: it writes some and hands the rest back as unprocessed.
        const kept = requests.slice(0, Math.ceil(requests.length / 2));
        const result = await next({ ...args, input: { ...input, RequestItems: { [table]: kept } } } as never);
        const output = result.output as { UnprocessedItems?: Record<string, Request[]> };
        // DynamoDB names a table only when something of it is left.
        if (requests.length > kept.length) output.UnprocessedItems = { [table]: requests.slice(kept.length) };
        return result;
      } finally {
        seen.inFlight -= 1;
      }
    },
    { step: "initialize", name: "watchBatchWrites" },
  );
  return { client, seen };
}

const items = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, n) => ({ TableName: tables.audit, Item: { pk: `${prefix}#${n % 7}`, sk: String(n), n } }));

describe("bulk idempotent puts", () => {
  it("writes a thousand records' items, what the store hands back unprocessed included, a few calls at a time", async () => {
    const { client, seen } = watchedClient((_requests, call) => (call % 3 === 0 ? "half" : "write"));
    const puts = items(`bulk-${Date.now()}`, 2_000);
    await batchPutAll({ db: client }, puts);
    client.destroy();
    // 80 calls of 25, one in three of them answered half, each half put again.
    expect(seen.calls).toBeGreaterThan(80);
    for (const put of puts.filter((_, n) => n % 97 === 0)) {
      const { Item } = await db.send(new GetCommand({ TableName: tables.audit, Key: { pk: put.Item.pk, sk: put.Item.sk } }));
      expect(Item?.n).toBe(put.Item.n);
    }
    // Overlapping, as one invocation must to write 2,000 items in time, and never more than 4 at once.
    expect(seen.maxInFlight).toBeGreaterThan(1);
    expect(seen.maxInFlight).toBeLessThanOrEqual(4);
  });

  it("fails when the store keeps refusing a call, once no other call is in flight, and writes no call after it", async () => {
    const prefix = `refused-${Date.now()}`;
    // The store refuses every call holding item 60 (the third call of 25): its retries too, and the SDK's.
    const { client, seen } = watchedClient((requests) => (requests.some((request) => sortKey(request) === "60") ? "refuse" : "write"));
    const settled = batchPutAll({ db: client }, items(prefix, 1_000)).then(
      () => ({ failed: false, inFlight: seen.inFlight }),
      (error: unknown) => ({ failed: true, error, inFlight: seen.inFlight }),
    );
    const outcome = await settled;
    client.destroy();
    expect(outcome.failed).toBe(true);
    expect(outcome.inFlight).toBe(0);
    // Calls already started when it was refused finished; none began after (the batch is given again anyway).
    expect(seen.calls).toBeLessThan(40);
    const { Item } = await db.send(new GetCommand({ TableName: tables.audit, Key: { pk: `${prefix}#${60 % 7}`, sk: "60" } }));
    expect(Item).toBeUndefined();
  });
});
