/**
 * DynamoDB bills a write by the item's size in KB begun, twice inside a transaction: an audit record under 1 KB costs
 * 2 write units in its commit's transaction, one just over costs 4. An attach or a detach is most of what a fleet
 * commits, so their records are kept under it (docs/write-path.md); this guards the margin, with ids as long as real
 * ones (a tenant's, a source's, a request's) and an attach carrying what operators send: an APN and the network.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import {
  applyOperatorEvent,
  auditPartition,
  createTenantWithAdminKey,
  feedPartition,
  feedVersionSchema,
  ingestedEvent,
  newId,
  recordOfItem,
  registerDevice,
  shardCount,
  shardOfSubject,
  verifyAuditChain,
} from "@simroot/core";
import { itemBytes } from "./support/billed-units.ts";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

describe("an attach's and a detach's audit records", () => {
  it("stay under 1 KB, with real-length ids, an APN, the network and a first revision of 13 digits", async () => {
    const { ports } = runtime;
    const { tenant } = await createTenantWithAdminKey(ports, "record-size");
    const sourceId = newId("source");
    const device = (
      await registerDevice(ports, { tenantId: tenant.id, actor: "system:test", requestId: newId("request") }, { imsi: "208011234567890" })
    ).value;
    const facts = [
      {
        type: "sim.attached",
        data: { bearer: "cellular", ipv4: "10.212.250.117", apn: "iot.simroot.example", plmn: { mcc: "208", mnc: "01" } },
      },
      { type: "sim.detached", data: { bearer: "cellular", reason: "network" } },
    ];
    for (const [index, { type, data }] of facts.entries()) {
      const normalized = {
        type,
        dedupeKey: crypto.randomUUID(),
        occurredAt: new Date(Date.UTC(2026, 11, 5, 8, 0, index)).toISOString(),
        device: { imsi: device.imsi },
        sourceType: "test",
        data,
      };
      const ctx = { tenantId: tenant.id, actor: `source:${sourceId}`, requestId: newId("request") };
      const event = ingestedEvent(ctx, sourceId, "simroot", normalized as never, new Date());
      expect((await applyOperatorEvent(ports, event)).value.outcome).toBe("applied");
    }
    const { Items = [] } = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.audit,
        KeyConditionExpression: "pk = :p",
        ExpressionAttributeValues: { ":p": auditPartition(tenant.id, shardOfSubject(device.id)) },
        ConsistentRead: true,
      }),
    );
    const sizes = Items.filter((item) => item.action === "sim.attached" || item.action === "sim.detached").map((item) => [
      item.action,
      itemBytes(item) < 1024,
    ]);
    expect(sizes).toEqual([
      ["sim.attached", true],
      ["sim.detached", true],
    ]);
  });
});

describe("a trail written partly in the stored forms before the deflated bodies", () => {
  it("verifies across records and feed versions of both forms (review 102)", async () => {
    const { ports } = runtime;
    const { db, tables } = ports;
    const ctx = { tenantId: "ten_stored_forms", actor: "system:test", requestId: "req_test" };
    const register = (n: number) => registerDevice(ports, ctx, { imsi: `23410${String(700 + n).padStart(10, "0")}` });
    for (let n = 0; n < 3; n++) await register(n);
    const query = async (pk: string) =>
      (
        await db.send(
          new QueryCommand({
            TableName: tables.audit,
            KeyConditionExpression: "pk = :p",
            ExpressionAttributeValues: { ":p": pk },
            ConsistentRead: true,
          }),
        )
      ).Items ?? [];
    // Everything so far written again as the code before the record body (3396f4f) and deflated entries (5287ea6) wrote it.
    const records = (
      await Promise.all(Array.from({ length: shardCount }, (_, shard) => query(auditPartition(ctx.tenantId, shard))))
    ).flat();
    for (const item of records) await db.send(new PutCommand({ TableName: tables.audit, Item: recordOfItem(item) }));
    for (const item of await query(feedPartition(ctx.tenantId)))
      await db.send(
        new PutCommand({ TableName: tables.audit, Item: { ...item, entries: feedVersionSchema.shape.entries.parse(item.entries) } }),
      );
    expect(records.map((item) => "body" in item && !("body" in recordOfItem(item)))).toEqual([true, true, true]);
    for (let n = 3; n < 5; n++) await register(n);
    expect(await verifyAuditChain(ports, ctx.tenantId)).toMatchObject({ valid: true, checked: 5 });
  });
});
