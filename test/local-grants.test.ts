/**
 * IAM on the laptop (packages/local/src/grants.ts): a DynamoDB request sent while running as a
 * function is refused, as AWS refuses it, unless the platform definition grants that function the
 * action on that table. Without it, a function missing a grant on one table passes every local
 * test and fails on deploy day (the bundle test only sees which actions a function's code sends).
 */
import { GetCommand, PutCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { domainEvent } from "@simroot/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runningAs } from "../packages/local/src/grants.ts";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(async () => {
  // This file refuses requests on purpose: clear them so the runtime's own check passes.
  (runtime.grantViolations as unknown[]).length = 0;
  await runtime.stop();
});

const key = { pk: "T#grants", sk: "probe" };

describe("a function's DynamoDB requests", () => {
  it("are refused with AccessDeniedException when its grants lack the action on that table", async () => {
    const { db, tables } = runtime.ports;
    // siemExport may Query the audit table, nothing else.
    const refused = runningAs("siemExport", () => db.send(new PutCommand({ TableName: tables.control, Item: key })));
    await expect(refused).rejects.toMatchObject({ name: "AccessDeniedException" });
    await expect(refused).rejects.toThrow(/siemExport.*not authorized to perform: dynamodb:PutItem on resource: .*control/);
    expect(runtime.grantViolations.at(-1)).toMatchObject({ function: "siemExport", action: "dynamodb:PutItem" });
    // Nothing was written.
    expect((await db.send(new GetCommand({ TableName: tables.control, Key: key }))).Item).toBeUndefined();
  });

  it("are allowed when granted, and a transaction is checked item by item", async () => {
    const { db, tables } = runtime.ports;
    // deadLetterDrain may PutItem on control only.
    await runningAs("deadLetterDrain", () => db.send(new PutCommand({ TableName: tables.control, Item: key })));
    const mixed = runningAs("deadLetterDrain", () =>
      db.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName: tables.control, Item: { ...key, sk: "probe-2" } } },
            { ConditionCheck: { TableName: tables.audit, Key: key, ConditionExpression: "attribute_not_exists(pk)" } },
          ],
        }),
      ),
    );
    await expect(mixed).rejects.toThrow(/dynamodb:ConditionCheckItem on resource: .*audit/);
    expect((await db.send(new GetCommand({ TableName: tables.control, Key: { ...key, sk: "probe-2" } }))).Item).toBeUndefined();
  });

  it("are not checked outside a function (the runtime's set-up, a test's fixtures)", async () => {
    const { db, tables } = runtime.ports;
    await db.send(new PutCommand({ TableName: tables.audit, Item: key }));
    expect((await db.send(new GetCommand({ TableName: tables.audit, Key: key }))).Item).toMatchObject(key);
  });

  it("in a commit are checked against the function that made it, not the one whose commit the ledger batched it with", async () => {
    const { ledger, tables } = runtime.ports;
    const tenantId = "ten_grants_batched";
    const ctx = { tenantId, actor: "system:test", requestId: "req_grants" };
    const change = (sk: string, write: "Put" | "Delete") => ({
      tenantId,
      shard: 0,
      writes: [
        write === "Put"
          ? { Put: { TableName: tables.identity, Item: { pk: `T#${tenantId}`, sk } } }
          : { Delete: { TableName: tables.identity, Key: { pk: `T#${tenantId}`, sk } } },
      ],
      events: [domainEvent(ctx, "probe.changed", tenantId, {}, new Date())],
    });
    const before = runtime.grantViolations.length;
    // iotSync may put on identity but not delete; the management API may do both. Both commit at once on one shard.
    const [first, second] = await Promise.allSettled([
      runningAs("iotSync", () => ledger.commit(change("a", "Put"))),
      runningAs("api", () => ledger.commit(change("b", "Delete"))),
    ]);
    expect(first.status).toBe("fulfilled");
    expect(second.status).toBe("fulfilled");
    expect(runtime.grantViolations.length).toBe(before);
    // A delete iotSync makes itself is refused, whoever's commit it would have joined.
    await expect(runningAs("iotSync", () => ledger.commit(change("c", "Delete")))).rejects.toMatchObject({ name: "AccessDeniedException" });
    expect(runtime.grantViolations.at(-1)).toMatchObject({ function: "iotSync", action: "dynamodb:DeleteItem" });
  });
});
