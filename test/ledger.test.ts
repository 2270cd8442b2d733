import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import {
  archiveAudit,
  directoryArchiveStore,
  shardHeadKey,
  auditPartition,
  recordOfItem,
  auditRecordSchema,
  auditSortKey,
  chainHash,
  createLedger,
  documentClient,
  domainEvent,
  feedDeltas,
  feedSnapshot,
  feedHeadKey,
  feedPartition,
  feedSortKey,
  feedVersionSchema,
  storedEntries,
  memorySigner,
  portsFor,
  registerDevice,
  shardOfSubject,
  verifyAuditChain,
  unhashed,
  unhashedVersion,
  updateDevice,
  moveAuditCheckpoint,
  versionHash,
  type FeedVersionRecord,
  type Ports,
  type RequestContext,
} from "@simroot/core";
import { bindingKey } from "@simroot/core/device/keys";
import { cutEntries } from "@simroot/core/ledger/cut";
import { FeedBlocked, readFeedHead, sequenceOnce, settleHead } from "@simroot/core/ledger/sequencer";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";
import { twoShards } from "./support/two-shards.ts";
import { failHeadMoves, feedItems, freezeShardHead, holdersInFeed, refuseSequencerReads, staleShardRead } from "./support/store-faults.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  // These tests stage instances that stop mid-sequencing and check what the next run makes of it: the feed's backstop
  // (the history reader sequencing what was left behind; test/feed-backstop.test.ts) would do it for them first.
  runtime = await startTestRuntime({ feedBackstop: false });
});
afterAll(() => runtime.stop());

const ctxFor = (tenantId: string): RequestContext => ({ tenantId, actor: "system:test", requestId: "req_test" });
const imsi = (n: number) => `23410${String(n).padStart(10, "0")}`;

/** A stored feed version's entries (stored deflated: ledger/feed-version.ts). */
const entriesOf = (item: Record<string, unknown>) => feedVersionSchema.shape.entries.parse(item.entries);

/** The feed versions (contiguous from 1) and the device entries they carry. */
async function feedOf(ports: Ports, tenantId: string) {
  const result = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.audit,
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": feedPartition(tenantId) },
    }),
  );
  const records = result.Items ?? [];
  return {
    versions: records.map((item) => item.version as number),
    devices: records.flatMap((item) =>
      (entriesOf(item) as { kind: string; key: string }[]).filter((entry) => entry.kind === "device").map((entry) => entry.key),
    ),
  };
}

async function expectFeedCarries(ports: Ports, tenantId: string, devices: number) {
  const { versions, devices: keys } = await feedOf(ports, tenantId);
  expect(versions).toEqual(Array.from({ length: versions.length }, (_, n) => n + 1));
  expect(new Set(keys).size).toBe(devices);
}

/** The shard and sequence of a device's registration record. */
async function recordOf(ports: Ports, tenantId: string, deviceId: string) {
  const shard = shardOfSubject(deviceId);
  const result = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.audit,
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": auditPartition(tenantId, shard) },
    }),
  );
  const record = (result.Items ?? []).find((item) => item.subject === deviceId)!;
  return { shard, seq: record.seq as number, last: (result.Items ?? []).length };
}

/**
 * What someone who can write the store does to the feed's last version: new entries, the version re-hashed (no key
 * needed), and the head made to name the new hash.
 */
async function rewriteLastVersion(
  tenantId: string,
  item: Record<string, unknown>,
  record: FeedVersionRecord,
  entries: FeedVersionRecord["entries"],
) {
  const altered = { ...unhashedVersion(record), entries };
  const hash = versionHash(altered);
  await runtime.ports.db.send(new PutCommand({ TableName: runtime.ports.tables.audit, Item: { ...item, ...altered, hash } }));
  await runtime.ports.db.send(
    new UpdateCommand({
      TableName: runtime.ports.tables.control,
      Key: feedHeadKey(tenantId),
      UpdateExpression: "SET #hash = :hash",
      ConditionExpression: "version = :version",
      ExpressionAttributeNames: { "#hash": "hash" },
      ExpressionAttributeValues: { ":hash": hash, ":version": record.version },
    }),
  );
}

/** What a sequencing that wrote version 3 and stopped (crashed, timed out) before moving the head leaves: the head at 2. */
async function headOneBehind(ports: Ports, tenantId: string) {
  for (let n = 0; n < 3; n++) await registerDevice(ports, ctxFor(tenantId), { imsi: imsi(n) });
  const { Item: second } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.audit, Key: { pk: feedPartition(tenantId), sk: feedSortKey(2) } }),
  );
  await ports.db.send(
    new PutCommand({
      TableName: ports.tables.control,
      Item: { ...feedHeadKey(tenantId), version: 2, vector: second!.vector, hash: second!.hash, updatedAt: second!.time },
    }),
  );
}

/** One shard's audit record items, in order, opened (`recordOfItem`): put back as they are, they are records as written before 2026-12-05. */
async function shardItems(ports: Ports, tenantId: string, shard: number) {
  const { Items = [] } = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.audit,
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": auditPartition(tenantId, shard) },
      ConsistentRead: true,
    }),
  );
  return Items.map(recordOfItem);
}

/** The head item of `deviceId`'s shard as it is now (to serve it later as a stale read: `staleShardRead`). */
async function shardHeadItem(ports: Ports, tenantId: string, deviceId: string) {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: shardHeadKey(tenantId, shardOfSubject(deviceId)), ConsistentRead: true }),
  );
  return Item!;
}

/**
 * An address that moves from `giver` to `taker` (on another shard) while the sequencer reads the giver's shard as it was
 * before its release: the run that follows leaves the release out, naming the takeover (its own client and ports).
 */
async function releaseReadBeforeTakeover(tenantId: string, first: number, address: string) {
  const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
  const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
  const { giver, taker, report } = await twoShards(ports, tenantId, first);
  await report(giver, "sim.attached", { bearer: "cellular", ipv4: address });
  const thaw = await freezeShardHead(client, ports, tenantId, giver.id);
  await report(giver, "sim.detached");
  await report(taker, "sim.attached", { bearer: "cellular", ipv4: address });
  thaw();
  await ports.ledger.sequence(tenantId);
  return { client, ports, giver, taker, report };
}

/**
 * The latest version that left a binding change out (`pending`), as a run that stopped before moving the head leaves it:
 * later versions removed, the head put back on the version before (`previous`). `stored` is the version's item.
 */
async function leftVersionPending(ports: Ports, tenantId: string) {
  const items = await feedItems(ports, tenantId);
  const stored = items.findLast((item) => item.left !== undefined)!;
  const pending = feedVersionSchema.parse(stored);
  const previous = feedVersionSchema.parse(items.find((item) => item.version === pending.version - 1));
  for (const item of items.filter((item) => Number(item.version) > pending.version))
    await ports.db.send(new DeleteCommand({ TableName: ports.tables.audit, Key: { pk: item.pk, sk: item.sk } }));
  await ports.db.send(
    new PutCommand({
      TableName: ports.tables.control,
      Item: { ...feedHeadKey(tenantId), version: previous.version, vector: previous.vector, hash: previous.hash, updatedAt: previous.time },
    }),
  );
  return { stored, pending, previous };
}

/** Another instance over `client`, whose feed channel delivers what the test sends with `notify` (and publishes nothing). */
function notifiedInstance(client: ReturnType<typeof documentClient>) {
  let listener: ((notice: { tenantId: string; version: number } | undefined) => void) | undefined;
  const ports: Ports = {
    ...portsFor(client, runtime.ports.tables, runtime.bus),
    feedNotifier: {
      publish: async () => {},
      subscribe: (_tenant, subscriber) => {
        listener = subscriber;
        return () => {};
      },
    },
  };
  return { ports, notify: (notice: { tenantId: string; version: number }) => listener!(notice) };
}

describe("the ledger", () => {
  it("commits concurrent changes of one tenant into unbroken shard chains and a gapless feed", { timeout: 120_000 }, async () => {
    const tenantId = "ten_concurrent";
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, n) => registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(n) })),
    );
    expect(results).toHaveLength(60);
    const verification = await verifyAuditChain(runtime.ports, tenantId);
    expect(verification).toMatchObject({ valid: true, checked: 60 });
    await expectFeedCarries(runtime.ports, tenantId, 60);
  });

  it("rejects only the change whose own condition fails; its batch-mates commit", async () => {
    const tenantId = "ten_clash";
    const outcomes = await Promise.allSettled([
      registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(1) }),
      registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(2) }),
      registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(1) }),
      registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(3) }),
    ]);
    // The two registrations of one IMSI race: whichever commits first wins, the other alone is refused.
    expect([outcomes[1]!.status, outcomes[3]!.status]).toEqual(["fulfilled", "fulfilled"]);
    const clashing = [outcomes[0]!, outcomes[2]!];
    expect(clashing.map((outcome) => outcome.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect((clashing.find((outcome) => outcome.status === "rejected") as PromiseRejectedResult).reason.code).toBe(
      "device.identifier_taken",
    );
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true, checked: 3 });
  });

  it("keeps the chains and one feed when two writers (two Lambda containers) commit for the same tenant", async () => {
    const tenantId = "ten_two_writers";
    const other: Ports = portsFor(runtime.ports.db, runtime.ports.tables, runtime.bus);
    expect(other.ledger).not.toBe(runtime.ports.ledger);
    await Promise.all(
      Array.from({ length: 30 }, (_, n) => registerDevice(n % 2 === 0 ? runtime.ports : other, ctxFor(tenantId), { imsi: imsi(n) })),
    );
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true, checked: 30 });
    await expectFeedCarries(runtime.ports, tenantId, 30);
  });

  it("serves and verifies a feed whose head is one version behind (a run stopped between its version and the head); the next run moves it", async () => {
    const tenantId = "ten_head_behind";
    await headOneBehind(runtime.ports, tenantId);
    expect((await feedOf(runtime.ports, tenantId)).versions).toEqual([1, 2, 3]);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true, checked: 3 });

    // Another instance (nothing shared in memory): a PEP at 1 is handed up to the head, not version 3 (it would then
    // be ahead of the head, and told to snapshot again).
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    const other: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const answer = await feedDeltas(other, memorySigner(), tenantId, { since: 1, limit: 100, waitMs: 0 });
    expect(answer.kind === "response" ? answer.response.signed.head.version : answer.signed.head.version).toBe(2);

    // Its next change's run finds version 3 written, moves the head there, and sequences after it.
    const fourth = await registerDevice(other, ctxFor(tenantId), { imsi: imsi(3) });
    const { versions, devices } = await feedOf(runtime.ports, tenantId);
    expect(versions).toEqual([1, 2, 3, 4]);
    expect(devices).toContain(fourth.value.id);
    expect(devices).toHaveLength(4);
    const { Item: head } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }),
    );
    expect(head?.version).toBe(4);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true, checked: 4 });
    client.destroy();
  });

  it("verifies a head one behind more than once: the walk and its checkpoint stop at the head, not past it", async () => {
    const tenantId = "ten_behind_checkpoint";
    await headOneBehind(runtime.ports, tenantId);
    const signer = memorySigner();
    expect(await moveAuditCheckpoint(runtime.ports, signer, tenantId)).toMatchObject({ valid: true, lastSeq: 2 });
    // The next walk starts at the checkpoint: at the head (2), so version 3 is walked again, and still verifies.
    expect(await moveAuditCheckpoint(runtime.ports, signer, tenantId)).toMatchObject({ valid: true, lastSeq: 2 });
  });

  it("is moved forward by the audit archiver, which announces the move on the push channel as a sequencing would", async () => {
    const tenantId = "ten_behind_archiver";
    await headOneBehind(runtime.ports, tenantId);
    // No further change comes: only the archiver's hourly run moves the head, and PEPs on the channel learn it from it.
    const notices: { tenantId: string; version: number }[] = [];
    const ports = {
      ...runtime.ports,
      feedNotifier: { publish: async (notice: { tenantId: string; version: number }) => void notices.push(notice) },
    };
    const store = directoryArchiveStore(await mkdtemp(join(tmpdir(), "simroot-archive-behind-")));
    await archiveAudit(ports, memorySigner(), store, tenantId, { retentionDays: 90 });
    expect((await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16)).version).toBe(3);
    expect(notices).toEqual([{ tenantId, version: 3 }]);
    // Settled: the next run finds nothing to move and announces nothing.
    await archiveAudit(ports, memorySigner(), store, tenantId, { retentionDays: 90 });
    expect(notices).toHaveLength(1);
  });

  it("neither verifies nor serves a version written past the head by someone other than the sequencer", async () => {
    const tenantId = "ten_behind_forged";
    for (let n = 0; n < 2; n++) await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(n) });
    const { Items } = await runtime.ports.db.send(
      new QueryCommand({
        TableName: runtime.ports.tables.audit,
        KeyConditionExpression: "pk = :p",
        ExpressionAttributeValues: { ":p": feedPartition(tenantId) },
      }),
    );
    const last = Items!.at(-1)!;
    const device = (entriesOf(last) as { kind: string; key: string; shard: number; seq: number }[]).find(
      (entry) => entry.kind === "device",
    )!;
    // Chained to the head, hashed as the sequencer hashes (no key is needed), one device entry with a value of the forger's choosing.
    const unhashed = {
      version: Number(last.version) + 1,
      tenantId,
      time: new Date().toISOString(),
      vector: last.vector as number[],
      heads: {},
      entries: [{ ...device, value: { id: device.key, state: "active", forged: true } }],
      prevHash: last.hash as string,
    };
    await runtime.ports.db.send(
      new PutCommand({
        TableName: runtime.ports.tables.audit,
        Item: { pk: feedPartition(tenantId), sk: feedSortKey(unhashed.version), ...unhashed, hash: versionHash(unhashed as never) },
      }),
    );
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: false, brokenAt: { shard: "feed", seq: 3 } });
    // The next change's run finds it past the head and does not adopt it: the feed stops (and says so in the log) rather than serve it.
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    const other: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    await registerDevice(other, ctxFor(tenantId), { imsi: imsi(2) });
    const { Item: head } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }),
    );
    expect(head?.version).toBe(2);
    const answer = await feedDeltas(other, memorySigner(), tenantId, { since: 0, limit: 100, waitMs: 0 });
    expect(answer.kind === "response" && answer.response.signed.head.version).toBe(2);
    expect(answer.kind === "response" && answer.response.entries.some((entry) => entry.value?.forged)).toBe(false);
    client.destroy();
  });

  it("announces its version when the put's answer was lost and the SDK's retry finds it written", async () => {
    const tenantId = "ten_lost_version_answer";
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    let lost = 0;
    let sent = 0;
    // Below the SDK's retries: the first feed version put reaches the store, its answer does not, and the SDK sends it again.
    const loseFirstAnswer = (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
      // Below the document client, the item is in DynamoDB's attribute-value form.
      const pk = String((args as { input?: { Item?: { pk?: { S?: string } } } }).input?.Item?.pk?.S);
      const version = context.commandName === "PutItemCommand" && pk.endsWith("#feed");
      if (version) sent++;
      const result = await next(args);
      if (version && lost++ === 0)
        throw Object.assign(new Error("socket hang up"), { name: "TimeoutError", code: "ECONNRESET", $metadata: {} });
      return result;
    };
    client.middlewareStack.addRelativeTo(loseFirstAnswer as never, {
      relation: "after",
      toMiddleware: "retryMiddleware",
      name: "loseFirstVersionAnswer",
    });
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const notices: number[] = [];
    ports.ledger.onCommit((notice) => notices.push(notice.version));
    await registerDevice(ports, ctxFor(tenantId), { imsi: imsi(1) });
    // Sent twice, answered once (the retry found it written).
    expect([sent, lost]).toEqual([2, 1]);
    expect((await feedOf(runtime.ports, tenantId)).versions).toEqual([1]);
    expect(notices).toEqual([1]);
    client.destroy();
  });

  it("detects an altered record, a removed tail and an altered feed version", async () => {
    const tenantId = "ten_tamper";
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push((await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(n) })).value.id);
    const altered = await recordOf(runtime.ports, tenantId, ids[3]!);
    await runtime.ports.db.send(
      new UpdateCommand({
        TableName: runtime.ports.tables.audit,
        Key: { pk: auditPartition(tenantId, altered.shard), sk: auditSortKey(altered.seq) },
        UpdateExpression: "SET actor = :a",
        ExpressionAttributeValues: { ":a": "key:someone-else" },
      }),
    );
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({
      valid: false,
      brokenAt: { shard: altered.shard, seq: altered.seq, reason: "hash does not match the record's content" },
    });

    const tailTenant = "ten_tail";
    const tail: string[] = [];
    for (let n = 0; n < 3; n++) tail.push((await registerDevice(runtime.ports, ctxFor(tailTenant), { imsi: imsi(n) })).value.id);
    const last = await recordOf(runtime.ports, tailTenant, tail[2]!);
    await runtime.ports.db.send(
      new DeleteCommand({
        TableName: runtime.ports.tables.audit,
        Key: { pk: auditPartition(tailTenant, last.shard), sk: auditSortKey(last.last) },
      }),
    );
    expect(await verifyAuditChain(runtime.ports, tailTenant)).toMatchObject({
      valid: false,
      checked: 2,
      brokenAt: { shard: last.shard, seq: last.last },
    });

    const feedTenant = "ten_feed_tamper";
    for (let n = 0; n < 3; n++) await registerDevice(runtime.ports, ctxFor(feedTenant), { imsi: imsi(n) });
    expect(await verifyAuditChain(runtime.ports, feedTenant)).toMatchObject({ valid: true, checked: 3 });
    // The first entry's value altered, stored deflated as the sequencer stores entries.
    const key = { pk: feedPartition(feedTenant), sk: feedSortKey(1) };
    const { Item: stored } = await runtime.ports.db.send(new GetCommand({ TableName: runtime.ports.tables.audit, Key: key }));
    const [entry, ...rest] = entriesOf(stored!);
    const forged = [{ ...entry!, value: { id: "dev_forged", state: "active" } }, ...rest];
    await runtime.ports.db.send(
      new UpdateCommand({
        TableName: runtime.ports.tables.audit,
        Key: key,
        UpdateExpression: "SET entries = :e",
        ExpressionAttributeValues: { ":e": storedEntries(forged) },
      }),
    );
    expect(await verifyAuditChain(runtime.ports, feedTenant)).toMatchObject({
      valid: false,
      brokenAt: { shard: "feed", seq: 1, reason: "hash does not match the feed version's content" },
    });
  });

  it("detects a feed version whose entry carries another value than its record, even re-hashed with the head moved to match", async () => {
    const tenantId = "ten_value_forged";
    for (let n = 0; n < 2; n++) await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(n) });
    const { Item } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.audit, Key: { pk: feedPartition(tenantId), sk: feedSortKey(2) } }),
    );
    const record = feedVersionSchema.parse(Item);
    // What PEPs would enforce: the device's state rewritten (revoked devices shown active work the same way).
    const entries = record.entries.map((entry) =>
      entry.kind === "device" ? { ...entry, value: { ...entry.value, state: "suspended" } } : entry,
    );
    await rewriteLastVersion(tenantId, Item!, record, entries);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({
      valid: false,
      brokenAt: { shard: "feed", seq: 2, reason: expect.stringContaining("does not carry the value") },
    });
  });

  it("detects a feed version that leaves out a change of its records, even re-hashed with the head moved to match", async () => {
    const tenantId = "ten_change_dropped";
    const ids: string[] = [];
    for (let n = 0; n < 2; n++) ids.push((await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(n) })).value.id);
    const { Item } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.audit, Key: { pk: feedPartition(tenantId), sk: feedSortKey(2) } }),
    );
    const record = feedVersionSchema.parse(Item);
    expect(record.entries.map((entry) => entry.key)).toContain(ids[1]);
    // The version no longer carries the second device: PEPs would never learn of it (or of its revocation).
    await rewriteLastVersion(
      tenantId,
      Item!,
      record,
      record.entries.filter((entry) => entry.key !== ids[1]),
    );
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({
      valid: false,
      brokenAt: { shard: "feed", seq: 2, reason: expect.stringContaining(`leaves out device ${ids[1]}`) },
    });
  });

  it("detects a feed version whose entry is an earlier change of its key than the cut's last (a change undone)", async () => {
    const tenantId = "ten_undone";
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    // The sequencer cannot read the shard heads until both changes of the device have committed: one cut holds both.
    let held = true;
    refuseSequencerReads(client, () => held);
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const records = async () => {
      const all = [];
      for (let shard = 0; shard < 16; shard++) {
        const { Items } = await runtime.ports.db.send(
          new QueryCommand({
            TableName: runtime.ports.tables.audit,
            KeyConditionExpression: "pk = :p",
            ExpressionAttributeValues: { ":p": auditPartition(tenantId, shard) },
          }),
        );
        all.push(...(Items ?? []).map(recordOfItem));
      }
      return all;
    };
    const until = async (count: number) => {
      while ((await records()).length < count) await new Promise((resolve) => setTimeout(resolve, 20));
      return records();
    };
    const registered = registerDevice(ports, ctxFor(tenantId), { imsi: imsi(1) });
    const id = String((await until(1))[0]!.subject);
    const updated = updateDevice(ports, ctxFor(tenantId), { id, ifRevision: 1, changes: { labels: { fleet: "b" } } });
    const [first, second] = (await until(2)).sort((a, b) => Number(a.seq) - Number(b.seq));
    held = false;
    await Promise.all([registered, updated]);
    const { Items } = await runtime.ports.db.send(
      new QueryCommand({
        TableName: runtime.ports.tables.audit,
        KeyConditionExpression: "pk = :p",
        ExpressionAttributeValues: { ":p": feedPartition(tenantId) },
      }),
    );
    const item = Items!.find((version) => (entriesOf(version) as { key: string }[]).some((entry) => entry.key === id))!;
    const record = feedVersionSchema.parse(item);
    expect(record.entries.find((entry) => entry.key === id)?.seq).toBe(Number(second!.seq));
    // The entry rewritten to the first change (its own record, value and all): the label change never reaches a PEP.
    const firstValue = (first!.feed as { kind: string; key: string; value: unknown }[]).find((change) => change.key === id)!.value;
    const entries = record.entries.map((entry) =>
      entry.key === id ? { ...entry, seq: Number(first!.seq), value: firstValue as never } : entry,
    );
    await rewriteLastVersion(tenantId, item, record, entries);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({
      valid: false,
      brokenAt: { shard: "feed", seq: record.version, reason: expect.stringContaining("where the cut's next change is") },
    });
    client.destroy();
  });

  it("does not adopt a version past the head that claims records its shard does not hold", async () => {
    const tenantId = "ten_behind_inflated";
    for (let n = 0; n < 2; n++) await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(n) });
    const { Item: last } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.audit, Key: { pk: feedPartition(tenantId), sk: feedSortKey(2) } }),
    );
    // One shard's sequence pushed past its chain: adopted, every later run would find the head past its cut, and the feed would stop in silence.
    const vector = (last!.vector as number[]).map((seq, shard) => (shard === 5 ? seq + 1 : seq));
    const unhashed = {
      version: 3,
      tenantId,
      time: new Date().toISOString(),
      vector,
      heads: {},
      entries: [],
      prevHash: last!.hash as string,
    };
    await runtime.ports.db.send(
      new PutCommand({
        TableName: runtime.ports.tables.audit,
        Item: { pk: feedPartition(tenantId), sk: feedSortKey(3), ...unhashed, hash: versionHash(unhashed as never) },
      }),
    );
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    await registerDevice(portsFor(client, runtime.ports.tables, runtime.bus), ctxFor(tenantId), { imsi: imsi(2) });
    const { Item: head } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }),
    );
    expect(head?.version).toBe(2);
    client.destroy();
  });

  it("does not adopt a version past the head that covers a record past its shard's head item (both written into the audit table alone)", async () => {
    const { db, tables } = runtime.ports;
    const tenantId = "ten_forged_past_shard";
    await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(980) });
    const head = await readFeedHead(db, tables, tenantId, 16);
    const shard = head.vector.findIndex((seq) => seq > 0);
    const [last] = (await shardItems(runtime.ports, tenantId, shard)).slice(-1);
    // A record after the shard's head (never committed: no head item names it), chained to the last one, and a version
    // covering it, chained to the feed head: hashed as the ledger and the sequencer hash (no key is needed).
    const value = { id: "dev_forged", state: "active", labels: { admin: "true" } };
    const forged = {
      ...unhashed(auditRecordSchema.parse(last)),
      seq: head.vector[shard]! + 1,
      prevHash: String(last!.hash),
      feed: [{ kind: "device", key: "dev_forged", value }],
    };
    const forgedHash = chainHash(forged.prevHash, forged);
    await db.send(
      new PutCommand({
        TableName: tables.audit,
        Item: { ...last, ...forged, sk: auditSortKey(forged.seq), hash: forgedHash },
      }),
    );
    const version = {
      version: head.version + 1,
      tenantId,
      time: new Date().toISOString(),
      vector: head.vector.map((to, n) => (n === shard ? forged.seq : to)),
      heads: { [String(shard)]: forgedHash },
      entries: [{ kind: "device", key: "dev_forged", value, shard, seq: forged.seq }],
      prevHash: head.hash,
    };
    await db.send(
      new PutCommand({
        TableName: tables.audit,
        Item: { pk: feedPartition(tenantId), sk: feedSortKey(version.version), ...version, hash: versionHash(version as never) },
      }),
    );
    await expect(settleHead(db, tables, tenantId)).rejects.toThrow(FeedBlocked);
    expect((await readFeedHead(db, tables, tenantId, 16)).version).toBe(head.version);
  });

  it("does not serve a record altered in the audit table before the sequencer read it, even re-hashed", async () => {
    const tenantId = "ten_altered_before_read";
    // The change commits while the store refuses the sequencer its reads (the commit answers after its wait).
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    refuseSequencerReads(client, () => true);
    const device = await registerDevice(portsFor(client, runtime.ports.tables, runtime.bus), ctxFor(tenantId), { imsi: imsi(981) });
    const shard = shardOfSubject(device.value.id);
    const [record] = (await shardItems(runtime.ports, tenantId, shard)).slice(-1);
    const parsed = auditRecordSchema.parse(record);
    const altered = {
      ...unhashed(parsed),
      feed: parsed.feed!.map((change) => ({ ...change, value: { ...change.value, labels: { admin: "true" } } })),
    };
    await runtime.ports.db.send(
      new PutCommand({
        TableName: runtime.ports.tables.audit,
        Item: { ...record, ...altered, hash: chainHash(altered.prevHash, altered) },
      }),
    );
    await expect(sequenceOnce(runtime.ports.db, runtime.ports.tables, tenantId, 16, new Date())).rejects.toThrow(FeedBlocked);
    expect((await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16)).version).toBe(0);
    client.destroy();
  }, 30_000);

  it("does not adopt a version past the head written by hand without the binding change a sequencing leaves out", async () => {
    const tenantId = "ten_left_dropped";
    const { client, ports, taker } = await releaseReadBeforeTakeover(tenantId, 1000, "10.9.4.4");
    const { stored, pending: honest, previous } = await leftVersionPending(ports, tenantId);
    await ports.db.send(new DeleteCommand({ TableName: ports.tables.audit, Key: { pk: stored.pk, sk: stored.sk } }));
    // Written into the audit table alone: the same cut, every change its records give (the release among them), no `left`.
    const perShard = await Promise.all(
      honest.vector.map(async (to, shard) =>
        (await shardItems(ports, tenantId, shard))
          .map((item) => auditRecordSchema.parse(item))
          .filter((record) => record.seq > previous.vector[shard]! && record.seq <= to),
      ),
    );
    const { left: _left, ...rest } = honest;
    const forged = { ...unhashedVersion(rest), entries: cutEntries(perShard).map(({ entry }) => entry) };
    await ports.db.send(
      new PutCommand({
        TableName: ports.tables.audit,
        Item: { pk: feedPartition(tenantId), sk: feedSortKey(forged.version), ...forged, hash: versionHash(forged) },
      }),
    );
    await expect(settleHead(client, ports.tables, tenantId)).rejects.toThrow(/serves binding 10.9.4.4 at revision/);
    expect((await readFeedHead(ports.db, ports.tables, tenantId, 16)).version).toBe(previous.version);
    // The honest version, written again, is adopted: the feed ends with the taker.
    await ports.db.send(
      new DeleteCommand({ TableName: ports.tables.audit, Key: { pk: feedPartition(tenantId), sk: feedSortKey(forged.version) } }),
    );
    await ports.db.send(new PutCommand({ TableName: ports.tables.audit, Item: stored }));
    await settleHead(client, ports.tables, tenantId);
    expect((await readFeedHead(ports.db, ports.tables, tenantId, 16)).version).toBe(honest.version);
    expect((await holdersInFeed(ports, tenantId, "10.9.4.4")).at(-1)).toBe(taker.id);
    client.destroy();
  }, 30_000);

  it("does not serve a version past the head when a notice names it (a notice is a hint: the head is read)", async () => {
    const tenantId = "ten_notice_forged";
    await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(990) });
    const head = await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);
    const version = {
      version: head.version + 1,
      tenantId,
      time: new Date().toISOString(),
      vector: [...head.vector],
      heads: {},
      entries: [{ kind: "device", key: "dev_forged", value: { id: "dev_forged", state: "active" }, shard: 0, seq: 1 }],
      prevHash: head.hash,
    };
    await runtime.ports.db.send(
      new PutCommand({
        TableName: runtime.ports.tables.audit,
        Item: { pk: feedPartition(tenantId), sk: feedSortKey(version.version), ...version, hash: versionHash(version) },
      }),
    );
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    const { ports: other, notify } = notifiedInstance(client);
    const waiting = feedDeltas(other, memorySigner(), tenantId, { since: head.version, limit: 100, waitMs: 1500 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    notify({ tenantId, version: version.version });
    const answer = await waiting;
    const signed = answer.kind === "response" ? answer.response.signed : answer.signed;
    expect(signed.head.version).toBe(head.version);
    expect(answer.kind === "response" ? answer.response.entries : []).toEqual([]);
    client.destroy();
  });

  it("reads the head at most twice for a burst of notices, and soon again when that read fails", async () => {
    const tenantId = "ten_notice_burst";
    await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(991) });
    const head = await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    let reads = 0;
    let failing = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const key = (args.input as { Key?: Record<string, unknown> }).Key;
        if (
          (context as { commandName?: string }).commandName === "GetItemCommand" &&
          key?.sk === feedHeadKey(tenantId).sk &&
          key.pk === feedHeadKey(tenantId).pk
        ) {
          reads++;
          if (failing > 0) {
            failing--;
            throw Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });
          }
        }
        return next(args);
      },
      { step: "initialize", name: "countHeadReads" },
    );
    const { ports: other, notify } = notifiedInstance(client);
    // A waiting poll (its first head read done), then 200 notices at once (a burst of commits, or forged ones).
    const idle = feedDeltas(other, memorySigner(), tenantId, { since: head.version, limit: 100, waitMs: 1000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = reads;
    for (let n = 0; n < 200; n++) notify({ tenantId, version: head.version + 1 + n });
    await idle;
    expect(reads - before).toBeLessThanOrEqual(2);

    // A commit elsewhere, and its notice, while the store refuses the first read of the head: the poll still wakes soon.
    const waiting = feedDeltas(other, memorySigner(), tenantId, { since: head.version, limit: 100, waitMs: 4000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(992) });
    failing = 1;
    const started = Date.now();
    notify({ tenantId, version: head.version + 1 });
    const answer = await waiting;
    expect(answer.kind === "response" && answer.response.signed.head.version).toBe(head.version + 1);
    expect(Date.now() - started).toBeLessThan(1000);
    client.destroy();
  });

  it("does not serve a version record altered in place in the audit table, below the head, in deltas or a snapshot", async () => {
    const tenantId = "ten_version_altered";
    for (let n = 0; n < 2; n++) await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(993 + n) });
    const [first] = await feedItems(runtime.ports, tenantId);
    const entries = (entriesOf(first!) as { value: Record<string, unknown> }[]).map((entry) => ({
      ...entry,
      value: { ...entry.value, labels: { admin: "true" } },
    }));
    await runtime.ports.db.send(new PutCommand({ TableName: runtime.ports.tables.audit, Item: { ...first, entries } }));
    // Another instance (nothing in memory): the version is read from the store, and found not to be the chain's.
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    const other: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const signer = memorySigner();
    await expect(feedDeltas(other, signer, tenantId, { since: 0, limit: 100, waitMs: 0 })).rejects.toThrow(/feed version 1 does not hash/);
    // The snapshot's replay of the last seconds' versions reads it too.
    let cursor: string | undefined;
    const snapshot = async () => {
      do cursor = (await feedSnapshot(other, signer, tenantId, cursor, 100)).next;
      while (cursor);
    };
    await expect(snapshot()).rejects.toThrow(/feed version 1 does not hash/);
    // Renumbered as well (out of the chain's order), it is not served either: deltas ask for a snapshot, the snapshot
    // refuses the window it cannot check.
    await runtime.ports.db.send(new PutCommand({ TableName: runtime.ports.tables.audit, Item: { ...first, entries, version: 0 } }));
    await expect(feedDeltas(other, signer, tenantId, { since: 0, limit: 100, waitMs: 0 })).rejects.toThrow(/snapshot/i);
    cursor = undefined;
    await expect(snapshot()).rejects.toThrow(/versions after 0 are missing/);
    client.destroy();
  });

  it("does not replay in a snapshot a last version re-hashed whole: it does not end at the head the page read", async () => {
    const tenantId = "ten_version_rehashed";
    for (let n = 0; n < 2; n++) await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(997 + n) });
    const { Item } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.audit, Key: { pk: feedPartition(tenantId), sk: feedSortKey(2) } }),
    );
    const record = feedVersionSchema.parse(Item);
    const entries = record.entries.map((entry) =>
      entry.kind === "device" ? { ...entry, value: { ...entry.value, labels: { admin: "true" } } } : entry,
    );
    // Self-consistent (it hashes to what it says and names the version before), but the head item was left alone.
    const altered = { ...unhashedVersion(record), entries };
    await runtime.ports.db.send(
      new PutCommand({ TableName: runtime.ports.tables.audit, Item: { ...Item, ...altered, hash: versionHash(altered) } }),
    );
    // Another instance (nothing in memory): the first page anchors the replayed versions to the head it read first.
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    const other: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    await expect(feedSnapshot(other, memorySigner(), tenantId, undefined, 100)).rejects.toThrow(/do not end at the head \(2\)/);
    client.destroy();
  });

  it("refuses a version whose deflated entries nest deeper than a stored list may, as unverifiable, in deltas and the verifier", async () => {
    const tenantId = "ten_version_deep";
    for (let n = 0; n < 2; n++) await registerDevice(runtime.ports, ctxFor(tenantId), { imsi: imsi(995 + n) });
    const [first] = await feedItems(runtime.ports, tenantId);
    expect(first!.entries).toBeInstanceOf(Uint8Array);
    // With audit-table write access: under 1 KB of deflate that opens to a value nested 200,000 deep. DynamoDB refuses a
    // list or map nested past 32 levels; deflated bytes carry no such limit, and hashing them ran out of stack (a 500).
    const depth = 200_000;
    const entries = deflateRawSync(
      `[{"kind":"device","key":"dev_x","shard":0,"seq":1,"value":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}]`,
    );
    expect(entries.byteLength).toBeLessThan(1000);
    await runtime.ports.db.send(new PutCommand({ TableName: runtime.ports.tables.audit, Item: { ...first, entries } }));
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    const other: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    await expect(feedDeltas(other, memorySigner(), tenantId, { since: 0, limit: 100, waitMs: 0 })).rejects.toMatchObject({
      code: "feed.unverifiable",
    });
    expect(await verifyAuditChain(other, tenantId)).toMatchObject({ valid: false, brokenAt: { shard: "feed", seq: 1 } });
    client.destroy();
  });

  it("refuses a change that says nothing happened", () => {
    const ledger = createLedger(runtime.ports.db, runtime.ports.tables);
    expect(() => ledger.commit({ tenantId: "ten_x", writes: [], events: [] })).toThrow("at least one event");
  });

  it("never commits a batch twice when a commit listener throws", async () => {
    const tenantId = "ten_listener";
    const ports: Ports = portsFor(runtime.ports.db, runtime.ports.tables, runtime.bus);
    ports.ledger.onCommit(() => {
      throw new Error("listener failed");
    });
    // Changes committed together share a transaction; each caller learns its change committed.
    const change = (n: number) => ({
      tenantId,
      writes: [{ Put: { TableName: ports.tables.control, Item: { pk: `T#${tenantId}#thing`, sk: String(n) } } }],
      events: [domainEvent(ctxFor(tenantId), "thing.happened", `thing-${n}`, { n }, new Date())],
    });
    const results = await Promise.allSettled([0, 1, 2].map((n) => ports.ledger.commit(change(n))));
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    // Three changes, three records: a failing listener is not a failed commit.
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true, checked: 3 });
  });

  it("commits once when the store committed but the answer was lost: the retry carries the same ClientRequestToken", async () => {
    const tenantId = "ten_lost_answer";
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    let lost = 0;
    const tokens: (string | undefined)[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if ((context as { commandName?: string }).commandName !== "TransactWriteItemsCommand") return next(args);
        tokens.push((args.input as { ClientRequestToken?: string }).ClientRequestToken);
        const result = await next(args);
        if (lost++ === 0) throw Object.assign(new Error("socket hang up"), { code: "ECONNRESET", $metadata: {} });
        return result;
      },
      { step: "initialize", name: "loseFirstAnswer" },
    );
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const device = await registerDevice(ports, ctxFor(tenantId), { imsi: imsi(1) });
    // The change's transaction was sent twice (the sequencer's own transaction follows it).
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    expect(tokens[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(tokens[1]).toBe(tokens[0]);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true, checked: 1, lastSeq: 1 });
    expect((await feedOf(runtime.ports, tenantId)).devices).toEqual([device.value.id]);
    client.destroy();
  });

  it("serves an address moved between devices on two shards with its last holder, whatever order the sequencer reads the shards in", async () => {
    // DynamoDB Local answers a read of the 16 shard heads as of one instant; AWS answers a BatchGetItem key by key (and
    // cancels a transactional read whenever a head is being written). Here the sequencer reads the shard of the device
    // that gave an address up as it was before, and the shard of the device that took it over as it is now.
    const tenantId = "ten_cut_order";
    const { client, ports, giver, taker } = await releaseReadBeforeTakeover(tenantId, 700, "10.9.0.1");
    // The feed a PEP applies ends with the taker holding the address, as the store says, not with the giver's release
    // (served after the takeover, it ended with nobody). The release is left out, naming the takeover.
    expect(await holdersInFeed(ports, tenantId, "10.9.0.1")).toEqual([giver.id, taker.id]);
    expect(await verifyAuditChain(ports, tenantId)).toMatchObject({ valid: true });
    client.destroy();
  });

  it("adopts a version left past the head that names an overtaking record once its shard has moved on, and not with that record altered", async () => {
    const tenantId = "ten_left_pending";
    const { client, ports, taker, report } = await releaseReadBeforeTakeover(tenantId, 960, "10.9.0.9");
    // The version that left the giver's release out, naming the takeover; then a run that stopped before moving the head.
    const { pending, previous } = await leftVersionPending(ports, tenantId);
    const { by } = pending.left![0]!;
    expect(by.shard).toBe(shardOfSubject(taker.id));
    const headVersion = async () => (await readFeedHead(ports.db, ports.tables, tenantId, 16)).version;
    // The taker's shard moves on before any run adopts it (a change committed while the store refuses the sequencer).
    const refusing = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    refuseSequencerReads(refusing, () => true);
    await report(taker, "sim.detached", { bearer: "cellular" }, portsFor(refusing, runtime.ports.tables, runtime.bus));
    expect(Number((await shardHeadItem(ports, tenantId, taker.id)).seq)).toBeGreaterThan(by.seq);
    // The record it names, altered: not adopted (it is checked in its chain, up to where the feed had taken its shard).
    const named = (await shardItems(ports, tenantId, by.shard)).find((item) => Number(item.seq) === by.seq)!;
    await ports.db.send(new PutCommand({ TableName: ports.tables.audit, Item: { ...named, feed: [] } }));
    await expect(settleHead(client, ports.tables, tenantId)).rejects.toThrow(FeedBlocked);
    await expect(settleHead(client, ports.tables, tenantId)).rejects.toThrow(/not in its chain/);
    expect(await headVersion()).toBe(previous.version);

    await ports.db.send(new PutCommand({ TableName: ports.tables.audit, Item: named }));
    await settleHead(client, ports.tables, tenantId);
    expect(await headVersion()).toBe(pending.version);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true });
    client.destroy();
    refusing.destroy();
  }, 30_000);

  it("reaches the takeover of an address when the sequencer read its shard before it and the release after", async () => {
    const tenantId = "ten_cut_reach";
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const { giver, taker, report } = await twoShards(ports, tenantId, 720);
    await report(giver, "sim.attached", { bearer: "cellular", ipv4: "10.9.0.2" });
    const before = await shardHeadItem(ports, tenantId, taker.id);
    // Both changes commit while the store refuses the sequencer (each commit answers after its 5 s wait).
    let refuse = true;
    refuseSequencerReads(client, () => refuse);
    await report(giver, "sim.detached");
    await report(taker, "sim.attached", { bearer: "cellular", ipv4: "10.9.0.2" });
    refuse = false;
    staleShardRead(client, before, () => true);
    await ports.ledger.sequence(tenantId);
    // The cut holds the release, and the store names the takeover past it: the cut reaches it and serves it instead.
    expect(await holdersInFeed(ports, tenantId, "10.9.0.2")).toEqual([giver.id, taker.id]);
    expect(await verifyAuditChain(ports, tenantId)).toMatchObject({ valid: true });
    client.destroy();
  }, 30_000);

  it("does not serve past a binding whose store item is not yet at its record's revision (one transaction's items visible one by one)", async () => {
    const tenantId = "ten_item_late";
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const { giver, taker, report } = await twoShards(ports, tenantId, 740);
    await report(giver, "sim.attached", { bearer: "cellular", ipv4: "10.9.3.1" });
    const giverHead = await shardHeadItem(ports, tenantId, giver.id);
    let refuse = true;
    refuseSequencerReads(client, () => refuse);
    await report(giver, "sim.detached");
    const { Item: released } = await client.send(
      new GetCommand({ TableName: ports.tables.identity, Key: bindingKey(tenantId, "10.9.3.1"), ConsistentRead: true }),
    );
    await report(taker, "sim.attached", { bearer: "cellular", ipv4: "10.9.3.1" });
    refuse = false;
    // The runs read the giver's shard before its release, and the address's item as the release left it (the taker's
    // write of it not visible yet), though the taker's record is.
    let staleHead = true;
    let staleItem = true;
    staleShardRead(client, giverHead, () => staleHead);
    staleShardRead(client, released!, () => staleItem, "staleBinding");
    await ports.ledger.sequence(tenantId);
    staleHead = false;
    await ports.ledger.sequence(tenantId);
    staleItem = false;
    await ports.ledger.sequence(tenantId);
    // Nothing past the release was served while the item lagged; once it shows the takeover, the feed ends with it.
    expect(await holdersInFeed(ports, tenantId, "10.9.3.1")).toEqual([giver.id, taker.id]);
    expect(await verifyAuditChain(ports, tenantId)).toMatchObject({ valid: true });
    client.destroy();
  }, 60_000);

  it("detects a binding's change taken out of the feed, even when the version names a later change of the address as overtaking it", async () => {
    const tenantId = "ten_binding_dropped";
    const ports = runtime.ports;
    const { registered, giver, taker, report } = await twoShards(ports, tenantId, 800);
    await report(giver, "sim.attached", { bearer: "cellular", ipv4: "10.9.0.7" });
    await report(taker, "sim.attached", { bearer: "cellular", ipv4: "10.9.0.7" });
    await report(registered[2]!, "sim.attached", { bearer: "cellular", ipv4: "10.9.0.8" });
    await report(taker, "sim.detached");
    expect(await verifyAuditChain(ports, tenantId)).toMatchObject({ valid: true });

    const stored = await feedItems(ports, tenantId);
    const takerRecords = await shardItems(ports, tenantId, shardOfSubject(taker.id));
    const release = takerRecords.find((record) => record.subject === taker.id && record.action === "sim.detached")!;
    const takeover = takerRecords.find((record) => record.subject === taker.id && record.action === "sim.attached")!;
    const takeoverRev = (takeover.feed as { kind: string; key: string; rev?: number }[]).find(
      (change) => change.kind === "binding" && change.key === "10.9.0.7",
    )!.rev!;
    const isTakeover = (entry: { kind: string; key: string; value: { deviceId?: string } | null }) =>
      entry.kind === "binding" && entry.key === "10.9.0.7" && entry.value?.deviceId === taker.id;
    /** The feed with the takeover taken out (and `left` as given), every later version re-hashed, the head moved to match. */
    const dropTakeover = async (left?: FeedVersionRecord["left"]) => {
      let prevHash: string | undefined;
      for (const item of stored) {
        const record = feedVersionSchema.parse(item);
        const takeover = record.entries.some(isTakeover);
        if (!takeover && prevHash === undefined) continue;
        const altered = {
          ...unhashedVersion(record),
          ...(prevHash === undefined ? {} : { prevHash }),
          entries: record.entries.filter((entry) => !isTakeover(entry)),
          ...(takeover && left ? { left } : {}),
        };
        const hash = versionHash(altered);
        await ports.db.send(new PutCommand({ TableName: ports.tables.audit, Item: { ...item, ...altered, hash } }));
        await ports.db
          .send(
            new UpdateCommand({
              TableName: ports.tables.control,
              Key: feedHeadKey(tenantId),
              UpdateExpression: "SET #hash = :hash",
              ConditionExpression: "version = :version",
              ExpressionAttributeNames: { "#hash": "hash" },
              ExpressionAttributeValues: { ":hash": hash, ":version": record.version },
            }),
          )
          .catch(() => undefined); // only the head's own version moves the head
        prevHash = hash;
      }
    };
    await dropTakeover();
    expect(await verifyAuditChain(ports, tenantId)).toMatchObject({
      valid: false,
      brokenAt: { reason: expect.stringMatching(/leaves out binding 10.9.0.7/) },
    });
    // Naming the taker's later release as what overtook the takeover: that release came after, no earlier version carried it.
    await dropTakeover([{ key: "10.9.0.7", rev: takeoverRev, by: { shard: Number(release.shard), seq: Number(release.seq) } }]);
    expect(await verifyAuditChain(ports, tenantId)).toMatchObject({
      valid: false,
      brokenAt: { reason: expect.stringMatching(/no earlier version carried/) },
    });
  });

  it("detects a feed re-cut so that the change an address's takeover overtook is served after it", async () => {
    // Every cut still carries exactly what its records give; only the order of the shards' moves is redrawn.
    const tenantId = "ten_recut";
    const ports = runtime.ports;
    const { giver, taker, report } = await twoShards(ports, tenantId, 900);
    await report(giver, "sim.attached", { bearer: "cellular", ipv4: "10.9.9.1" });
    await report(taker, "sim.attached", { bearer: "cellular", ipv4: "10.9.9.1" });
    const stored = await feedItems(ports, tenantId);
    const [prev, g, t] = stored.slice(-3).map((item) => feedVersionSchema.parse(item));
    const [gs, ts] = [shardOfSubject(giver.id), shardOfSubject(taker.id)];
    const recordsOf = async (shard: number, after: number, upTo: number) =>
      (await shardItems(ports, tenantId, shard))
        .filter((item) => Number(item.seq) > after && Number(item.seq) <= upTo)
        .map((item) => ({ seq: Number(item.seq), feed: item.feed as never, hash: String(item.hash) }));
    const cutOf = async (shard: number, record: FeedVersionRecord) => {
      const records = await recordsOf(shard, prev!.vector[shard]!, record.vector[shard]!);
      const entries = cutEntries(Array.from({ length: 16 }, (_, n) => (n === shard ? records : []))).map(({ entry }) => entry);
      return { heads: { [String(shard)]: records.at(-1)!.hash }, entries };
    };
    // First the taker's shard moves (its takeover), then the giver's (its take of the address, served last).
    const first = {
      ...unhashedVersion(g!),
      vector: prev!.vector.map((to, shard) => (shard === ts ? t!.vector[ts]! : to)),
      ...(await cutOf(ts, t!)),
      prevHash: prev!.hash,
    };
    const firstHash = versionHash(first);
    const second = { ...unhashedVersion(t!), ...(await cutOf(gs, g!)), prevHash: firstHash };
    const secondHash = versionHash(second);
    await ports.db.send(new PutCommand({ TableName: ports.tables.audit, Item: { ...stored.at(-2)!, ...first, hash: firstHash } }));
    await ports.db.send(new PutCommand({ TableName: ports.tables.audit, Item: { ...stored.at(-1)!, ...second, hash: secondHash } }));
    await ports.db.send(
      new PutCommand({
        TableName: ports.tables.control,
        Item: { ...feedHeadKey(tenantId), version: second.version, vector: second.vector, hash: secondHash, updatedAt: second.time },
      }),
    );
    // A PEP replaying it ends with the giver holding the address; the store says the taker.
    expect(await holdersInFeed(ports, tenantId, "10.9.9.1")).toEqual([taker.id, giver.id]);
    // The giver's take of the fresh address wrote its first revision, the takeover the next.
    const { Item: held } = await ports.db.send(
      new GetCommand({ TableName: ports.tables.identity, Key: bindingKey(tenantId, "10.9.9.1"), ConsistentRead: true }),
    );
    const takeoverRev = Number(held!.rev);
    expect(await verifyAuditChain(ports, tenantId)).toMatchObject({
      valid: false,
      brokenAt: {
        reason: `feed version ${second.version} serves binding 10.9.9.1 at revision ${takeoverRev - 1} after revision ${takeoverRev}`,
      },
    });
  });

  it("reads a record a version names from before the signed checkpoint in its chain, not by key: altered there, it is caught", async () => {
    const tenantId = "ten_left_forged";
    const ports = runtime.ports;
    const signer = memorySigner();
    const { giver, taker, report } = await twoShards(ports, tenantId, 920);
    await report(giver, "sim.attached", { bearer: "cellular", ipv4: "10.9.9.2" });
    expect(await moveAuditCheckpoint(ports, signer, tenantId)).toMatchObject({ valid: true });
    await report(taker, "sim.attached", { bearer: "cellular", ipv4: "10.9.9.2" });
    // The giver's record, before the checkpoint, made to claim a revision past the takeover's.
    const gs = shardOfSubject(giver.id);
    const giverRecord = (await shardItems(ports, tenantId, gs)).find((item) =>
      (item.feed as { key: string }[] | undefined)?.some((change) => change.key === "10.9.9.2"),
    )!;
    const { Item: held } = await ports.db.send(
      new GetCommand({ TableName: ports.tables.identity, Key: bindingKey(tenantId, "10.9.9.2"), ConsistentRead: true }),
    );
    const takeoverRev = Number(held!.rev);
    const feed = (giverRecord.feed as { key: string }[]).map((change) =>
      change.key === "10.9.9.2" ? { ...change, rev: takeoverRev + 1 } : change,
    );
    await ports.db.send(new PutCommand({ TableName: ports.tables.audit, Item: { ...giverRecord, feed } }));
    // The takeover taken out of its version, named as overtaken by that record.
    const stored = await feedItems(ports, tenantId);
    const last = feedVersionSchema.parse(stored.at(-1)!);
    const altered = {
      ...unhashedVersion(last),
      entries: last.entries.filter((entry) => entry.key !== "10.9.9.2"),
      left: [{ key: "10.9.9.2", rev: takeoverRev, by: { shard: gs, seq: Number(giverRecord.seq) } }],
    };
    const hash = versionHash(altered);
    await ports.db.send(new PutCommand({ TableName: ports.tables.audit, Item: { ...stored.at(-1)!, ...altered, hash } }));
    await ports.db.send(
      new PutCommand({
        TableName: ports.tables.control,
        Item: { ...feedHeadKey(tenantId), version: altered.version, vector: altered.vector, hash, updatedAt: altered.time },
      }),
    );
    expect(await holdersInFeed(ports, tenantId, "10.9.9.2")).toEqual([giver.id]);
    expect(await moveAuditCheckpoint(ports, signer, tenantId)).toMatchObject({
      valid: false,
      brokenAt: { reason: expect.stringMatching(/not in the chain that ends at the trusted head/) },
    });
  });

  it("sequences while an address keeps moving between two shards: the run reaches a moved address once, not again and again", async () => {
    const tenantId = "ten_churn";
    // The churn's own instance does not sequence (its reads of the shard heads are refused): only the run under test does.
    const churnClient = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    refuseSequencerReads(churnClient, () => true);
    const churn: Ports = portsFor(churnClient, runtime.ports.tables, runtime.bus);
    const { giver, taker, report } = await twoShards(runtime.ports, tenantId, 940, churn);
    let moves = 0;
    const move = () =>
      report(moves % 2 === 0 ? giver : taker, "sim.attached", { bearer: "cellular", ipv4: "10.9.9.3", apn: `apn${moves++}` });
    await move();
    // Every time the run reads the address's store item, it has moved once more.
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const tables = Object.keys((args.input as { RequestItems?: Record<string, unknown> }).RequestItems ?? {});
        if (
          (context as { commandName?: string }).commandName === "BatchGetItemCommand" &&
          tables.some((table) => table.endsWith("identity"))
        )
          await move();
        return next(args);
      },
      { step: "initialize", name: "churn" },
    );
    const result = await sequenceOnce(client, runtime.ports.tables, tenantId, 16, new Date());
    expect(result).toMatchObject({ tenantId });
    // One read of the address (one more move), one reach to the move it saw: the run did not chase the address.
    expect(moves).toBe(2);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true });
    client.destroy();
    churnClient.destroy();
  }, 60_000);

  it("keeps sequencing while a commit waits for its version, through more store failures than a run retries alone", async () => {
    const tenantId = "ten_sequencing_failures";
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    // The store refuses the sequencer's read of the shard heads 8 times (throttled under a herd), then answers.
    let refusals = 0;
    refuseSequencerReads(client, () => refusals < 8 && ++refusals > 0);
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const started = Date.now();
    const device = await registerDevice(ports, ctxFor(tenantId), { imsi: imsi(2) });
    const answeredMs = Date.now() - started;
    // Sequenced as soon as the store answered: no commit of anyone else was needed, and the commit did not wait out its 5 s.
    expect((await feedOf(runtime.ports, tenantId)).devices).toEqual([device.value.id]);
    expect(answeredMs).toBeLessThan(4_000);
    expect(refusals).toBe(8);
    client.destroy();
  });
});

describe("a feed version whose head move failed", () => {
  it.each([
    ["refused: the run that finds the version written moves the head to it", false],
    ["landed, its answer lost: the next run finds nothing new", true],
  ])("is announced like any commit when the head move was %s", async (_, lands) => {
    const tenantId = `ten_head_move_${lands ? "lost" : "refused"}`;
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    const failed = failHeadMoves(client, tenantId, { times: 1, lands });
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const notices: number[] = [];
    ports.ledger.onCommit((notice) => notice.tenantId === tenantId && notices.push(notice.version));
    const device = await registerDevice(ports, ctxFor(tenantId), { imsi: imsi(lands ? 4 : 3) });
    expect(failed.count).toBe(1);
    const head = await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);
    expect(head.version).toBeGreaterThan(0);
    expect((await feedOf(runtime.ports, tenantId)).devices).toEqual([device.value.id]);
    // The version PEPs wait for is announced (the feed's waiters and its push channel learn of it), once.
    await expect.poll(() => notices.at(-1), { timeout: 2_000 }).toBe(head.version);
    expect(notices.filter((version) => version === head.version)).toHaveLength(1);
    client.destroy();
  });
});
