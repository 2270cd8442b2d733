/**
 * Review 125: a trail rewritten with its hashes recomputed (which needs no key) must not verify once a signed checkpoint
 * covers the rewritten record: not by the admin's whole walk, and not after an older signed checkpoint is put back in
 * place of the newest one.
 */
import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  auditCheckpointKey,
  auditPartition,
  auditRecordSchema,
  auditSortKey,
  chainHash,
  feedHeadKey,
  feedPartition,
  feedSortKey,
  feedVersionSchema,
  headKey,
  recordOfItem,
  shardOfSubject,
  unhashed,
  unhashedVersion,
  versionHash,
} from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

type Tenant = Awaited<ReturnType<typeof tenantClient>>;

/** Registers devices until one lands on a shard no earlier record of the tenant is on. */
async function deviceOnFreshShard(tenant: Tenant, taken: Set<number>, first: number) {
  for (let n = first; ; n++) {
    const device = (await tenant.call("POST", "/v1/devices", { imsi: `20801555${String(n).padStart(7, "0")}` })).json as { id: string };
    const shard = shardOfSubject(device.id);
    const fresh = !taken.has(shard);
    taken.add(shard);
    if (fresh) return { id: device.id, shard };
  }
}

/** What someone who can write the store (no key) does: alters the last record of `shard` and re-hashes everything after. */
async function rewriteTail(tenantId: string, shard: number) {
  const { db, tables } = runtime.ports;
  const { Item: head } = await db.send(new GetCommand({ TableName: tables.control, Key: headKey(tenantId, shard), ConsistentRead: true }));
  const seq = Number(head!.seq);
  const { Item } = await db.send(
    new GetCommand({ TableName: tables.audit, Key: { pk: auditPartition(tenantId, shard), sk: auditSortKey(seq) } }),
  );
  const record = auditRecordSchema.parse(recordOfItem(Item!));
  const forged = { ...record, actor: "key:someone-else" };
  const hash = chainHash(forged.prevHash, unhashed(forged));
  await db.send(new PutCommand({ TableName: tables.audit, Item: { ...Item!, actor: forged.actor, hash } }));
  await db.send(new PutCommand({ TableName: tables.control, Item: { ...head!, hash } }));
  const { Items } = await db.send(
    new QueryCommand({
      TableName: tables.audit,
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": feedPartition(tenantId) },
      ConsistentRead: true,
    }),
  );
  let previous: string | undefined;
  for (const item of Items!) {
    const version = feedVersionSchema.parse(item);
    const moves = version.heads?.[String(shard)] !== undefined && version.vector[shard] === seq;
    if (!moves && previous === undefined) continue;
    const content = {
      ...unhashedVersion(version),
      ...(previous !== undefined ? { prevHash: previous } : {}),
      ...(moves ? { heads: { ...version.heads, [String(shard)]: hash } } : {}),
    };
    previous = versionHash(content);
    await db.send(
      new PutCommand({
        TableName: tables.audit,
        Item: { pk: item.pk, sk: feedSortKey(version.version), expiresAt: item.expiresAt, ...content, hash: previous },
      }),
    );
  }
  expect(previous).toBeDefined();
  const { Item: feedHead } = await db.send(new GetCommand({ TableName: tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }));
  await db.send(new PutCommand({ TableName: tables.control, Item: { ...feedHead!, hash: previous } }));
}

it("does not call a trail intact that was rewritten, with its hashes recomputed, under a signed checkpoint", async () => {
  const tenant = await tenantClient(runtime, "rewritten-under-checkpoint");
  const tenantId = tenant.tenant.id;
  const taken = new Set([0]);
  await deviceOnFreshShard(tenant, taken, 1);
  await runtime.settled();
  const older = (await tenant.call("POST", "/v1/audit/checkpoint")).json;
  expect(older).toMatchObject({ valid: true });
  const victim = await deviceOnFreshShard(tenant, taken, 100);
  await runtime.settled();
  const newer = (await tenant.call("POST", "/v1/audit/checkpoint")).json;
  expect(newer).toMatchObject({ valid: true, from: older.lastSeq });
  expect(newer.lastSeq).toBeGreaterThan(older.lastSeq);

  // The victim's registration (signed into the newer checkpoint) is rewritten: actor changed, everything after re-hashed.
  await rewriteTail(tenantId, victim.shard);
  // The walk from the newest checkpoint finds it.
  expect((await tenant.call("GET", "/v1/audit/verify")).json).toMatchObject({ valid: false });
  // The admin's whole walk, which an auditor takes as the stronger check, must find it too.
  expect((await tenant.call("GET", "/v1/audit/verify?full=true")).json).toMatchObject({ valid: false });
});

it("does not let an older signed checkpoint, put back in place of the newest, hide a rewrite signed into the newest", async () => {
  const tenant = await tenantClient(runtime, "replayed-checkpoint");
  const tenantId = tenant.tenant.id;
  const taken = new Set([0]);
  await deviceOnFreshShard(tenant, taken, 1);
  await runtime.settled();
  expect((await tenant.call("POST", "/v1/audit/checkpoint")).json).toMatchObject({ valid: true });
  const olderItem = (
    await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.control, Key: auditCheckpointKey(tenantId), ConsistentRead: true }),
    )
  ).Item!;
  const victim = await deviceOnFreshShard(tenant, taken, 100);
  await runtime.settled();
  expect((await tenant.call("POST", "/v1/audit/checkpoint")).json).toMatchObject({ valid: true });
  await rewriteTail(tenantId, victim.shard);
  expect((await tenant.call("GET", "/v1/audit/verify")).json).toMatchObject({ valid: false });
  // The older checkpoint (genuinely signed, kept by version) is written back as the current one: a replay.
  await runtime.ports.db.send(new PutCommand({ TableName: runtime.ports.tables.control, Item: olderItem }));
  expect((await tenant.call("GET", "/v1/audit/verify")).json).toMatchObject({ valid: false });
  // And the hourly archiver's move must not sign the rewritten head.
  expect((await tenant.call("POST", "/v1/audit/checkpoint")).json).toMatchObject({ valid: false });
});

it("does not call a trail intact whose newest versions were deleted down below its signed checkpoint", async () => {
  const tenant = await tenantClient(runtime, "cut-below-checkpoint");
  const tenantId = tenant.tenant.id;
  for (const imsi of ["208015550000201", "208015550000202"]) expect((await tenant.call("POST", "/v1/devices", { imsi })).status).toBe(201);
  await runtime.settled();
  const signed = (await tenant.call("POST", "/v1/audit/checkpoint")).json;
  expect(signed).toMatchObject({ valid: true });
  expect(signed.lastSeq).toBeGreaterThan(1);
  // Someone who can write the store deletes the signed version and moves the feed head back to the one before it.
  const { db, tables } = runtime.ports;
  const previous = (
    await db.send(
      new GetCommand({
        TableName: tables.audit,
        Key: { pk: feedPartition(tenantId), sk: feedSortKey(signed.lastSeq - 1) },
        ConsistentRead: true,
      }),
    )
  ).Item!;
  await db.send(new DeleteCommand({ TableName: tables.audit, Key: { pk: feedPartition(tenantId), sk: feedSortKey(signed.lastSeq) } }));
  const { Item: feedHead } = await db.send(new GetCommand({ TableName: tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }));
  await db.send(new PutCommand({ TableName: tables.control, Item: { ...feedHead!, version: signed.lastSeq - 1, hash: previous.hash } }));
  expect((await tenant.call("GET", "/v1/audit/verify")).json).toMatchObject({ valid: false });
  expect((await tenant.call("GET", "/v1/audit/verify?full=true")).json).toMatchObject({ valid: false });
});
