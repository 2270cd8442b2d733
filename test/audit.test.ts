/**
 * The audit API: every documented filter combination of `GET /v1/audit` answers, and
 * answers exactly the records it names; `/v1/audit/verify` walks only the records after the
 * signed checkpoint, the whole chain being an admin's walk.
 */
import { BatchWriteCommand, DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditCheckpointKey, auditPartition, auditSortKey, auditSubjectPartition, listAudit } from "@simroot/core";
import { unhashed } from "@simroot/core/ledger/audit-record";
import { chainHash } from "@simroot/core/ledger/chain";
import { feedPartition, feedVersionSchema, versionHash } from "@simroot/core/ledger/feed-version";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

/** The key, shard and sequence of the one audit record about `subject` (a device registered once). */
async function recordAbout(tenantId: string, subject: string) {
  // The outbox lists a record under its subject once it has read it from the stream.
  await runtime.settled();
  const { Items } = await runtime.ports.db.send(
    new QueryCommand({
      TableName: runtime.ports.tables.audit,
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": auditSubjectPartition(tenantId, subject) },
    }),
  );
  // The listing item holds the record's key: the shard and sequence are in it.
  const { pk, sk } = Items![0]!.record as { pk: string; sk: string };
  return { key: { pk, sk }, shard: Number(pk.slice(-2)), seq: Number(sk) };
}

const alter = (key: Record<string, unknown>) =>
  runtime.ports.db.send(
    new UpdateCommand({
      TableName: runtime.ports.tables.audit,
      Key: key,
      UpdateExpression: "SET actor = :a",
      ExpressionAttributeValues: { ":a": "key:someone-else" },
    }),
  );

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
type Tenant = Awaited<ReturnType<typeof tenantClient>>;
const register = async (tenant: Tenant, n: number) =>
  (await tenant.call("POST", "/v1/devices", { imsi: `20801000000${String(n).padStart(4, "0")}` })).json as { id: string };

describe("the audit API", () => {
  it("answers every documented filter combination (subject, from, to) with exactly the records it names", async () => {
    const tenant = await tenantClient(runtime, "filters");
    const first = await register(tenant, 1);
    await pause(30);
    const second = await register(tenant, 2);
    await tenant.call("POST", `/v1/devices/${second.id}/suspend`, { reason: "check" });
    await pause(30);
    await tenant.call("POST", `/v1/devices/${first.id}/suspend`, { reason: "check" });
    // A subject's listing is written by the outbox from the stream, as an index would be: eventually consistent.
    await runtime.settled();
    const all = (await tenant.call("GET", "/v1/audit?limit=1000")).json.items as { seq: number; time: string; subject: string }[];
    // The tenant's creation is record 1 (audited since issue 11), then the four changes.
    expect(all.length).toBe(5);
    // Bounds between the records, one of them written with another UTC offset.
    // Listed shard by shard (a shard's chain in order): bounds are picked from the records in time order.
    const times = all.map((record) => record.time).sort();
    const middle = times[2]!;
    const later = new Date(Date.parse(times[4]!) - 1).toISOString();
    const offset = (iso: string) => new Date(Date.parse(iso) + 2 * 3600_000).toISOString().replace("Z", "+02:00");
    const filters = { subject: [undefined, second.id], from: [undefined, middle], to: [undefined, later, offset(later)] };
    for (const subject of filters.subject) {
      for (const from of filters.from) {
        for (const to of filters.to) {
          const query = new URLSearchParams({
            limit: "1000",
            ...(subject ? { subject } : {}),
            ...(from ? { from } : {}),
            ...(to ? { to } : {}),
          });
          const answer = await tenant.call("GET", `/v1/audit?${query}`);
          expect(answer.status, String(query)).toBe(200);
          const bound = to && new Date(to).toISOString();
          const expected = all.filter(
            (record) => (!subject || record.subject === subject) && (!from || record.time >= from) && (!bound || record.time < bound),
          );
          expect(
            answer.json.items.map((record: { seq: number }) => record.seq),
            String(query),
          ).toEqual(expected.map((record) => record.seq));
        }
      }
    }
    // Reversed bounds name no records (they were a 500 from DynamoDB's BETWEEN).
    const reversed = await tenant.call("GET", `/v1/audit?${new URLSearchParams({ subject: second.id, from: later, to: middle })}`);
    expect([reversed.status, reversed.json.items]).toEqual([200, []]);
    // The export takes the same filters.
    const exported = await tenant.call("GET", `/v1/audit/export?from=${encodeURIComponent(middle)}`);
    expect(exported.status).toBe(200);
    expect(exported.text.trim().split("\n")).toHaveLength(all.filter((record) => record.time >= middle).length);
  });

  it("lists a subject's records written before the listing items (by the index) and after (by the items) together, at every page size", async () => {
    const tenant = await tenantClient(runtime, "subject-legacy");
    const device = await register(tenant, 41);
    for (let n = 0; n < 3; n++) {
      await tenant.call("POST", `/v1/devices/${device.id}/suspend`, { reason: "check" });
      await tenant.call("POST", `/v1/devices/${device.id}/reinstate`, { reason: "check" });
    }
    await runtime.settled();
    const all = (await tenant.call("GET", `/v1/audit?subject=${device.id}`)).json.items as { seq: number; time: string; shard: number }[];
    expect(all).toHaveLength(7);
    // The first four as code before 2026-12-03 wrote them: an index key on the record, no listing item.
    const partition = auditSubjectPartition(tenant.tenant.id, device.id);
    const { Items } = await runtime.ports.db.send(
      new QueryCommand({
        TableName: runtime.ports.tables.audit,
        KeyConditionExpression: "pk = :p",
        ExpressionAttributeValues: { ":p": partition },
      }),
    );
    expect(Items).toHaveLength(7);
    for (const item of Items!.slice(0, 4)) {
      const record = item.record as { pk: string; sk: string };
      await runtime.ports.db.send(
        new UpdateCommand({
          TableName: runtime.ports.tables.audit,
          Key: record,
          UpdateExpression: "SET gsi1pk = :p, gsi1sk = :s",
          ExpressionAttributeValues: { ":p": partition, ":s": `${String(item.sk).split("#")[0]}#${record.sk}` },
        }),
      );
      await runtime.ports.db.send(new DeleteCommand({ TableName: runtime.ports.tables.audit, Key: { pk: item.pk, sk: item.sk } }));
    }
    const seqs = all.map((record) => `${record.shard}:${record.seq}`);
    for (const limit of [1, 2, 3, 4, 5, 7, 8]) {
      const listed: string[] = [];
      let cursor: string | undefined;
      do {
        const query = new URLSearchParams({ subject: device.id, limit: String(limit), ...(cursor ? { cursor } : {}) });
        const page = await tenant.call("GET", `/v1/audit?${query}`);
        expect(page.status).toBe(200);
        listed.push(...page.json.items.map((record: { seq: number; shard: number }) => `${record.shard}:${record.seq}`));
        cursor = page.json.next;
      } while (cursor);
      expect(listed, `limit ${limit}`).toEqual(seqs);
    }
    // A range across both: from the third record on.
    const from = all[2]!.time;
    const ranged = (await tenant.call("GET", `/v1/audit?${new URLSearchParams({ subject: device.id, from, limit: "2" })}`)).json;
    expect(ranged.items.map((record: { seq: number; shard: number }) => `${record.shard}:${record.seq}`)).toEqual(
      all
        .filter((record) => record.time >= from)
        .slice(0, 2)
        .map((record) => `${record.shard}:${record.seq}`),
    );
  });

  it("lists two records written before at the same time and sequence (two shards, one index position) at every page size", async () => {
    // Found by a review: the index's keys carry no shard, and a page ending between the two skipped the second.
    const tenantId = "ten_audit_tie";
    const time = "2026-11-01T00:00:00.000Z";
    for (const shard of [0, 3]) {
      await runtime.ports.db.send(
        new PutCommand({
          TableName: runtime.ports.tables.audit,
          Item: {
            ...{ pk: auditPartition(tenantId, shard), sk: auditSortKey(5), seq: 5, shard, tenantId, time, action: "device.suspended" },
            ...{ actor: "system:test", requestId: "req_tie", subject: "dev_tie", eventId: `evt_tie_${shard}`, data: {} },
            ...{ prevHash: "0".repeat(64), hash: "0".repeat(64) },
            ...{ gsi1pk: auditSubjectPartition(tenantId, "dev_tie"), gsi1sk: `${time}#${auditSortKey(5)}` },
          },
        }),
      );
    }
    for (const limit of [1, 2, 10]) {
      const listed: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await listAudit(
          runtime.ports,
          { tenantId, actor: "system:test", requestId: "req_tie" },
          { subject: "dev_tie", limit, cursor },
        );
        listed.push(...page.items.map((record) => `${record.shard}:${record.seq}`));
        cursor = page.next;
      } while (cursor);
      expect(listed, `limit ${limit}`).toEqual(["0:5", "3:5"]);
    }
  });

  it("lists a device's records whole (the index holds their keys only): each hashes as the chain says", async () => {
    const tenant = await tenantClient(runtime, "subject-listing");
    const device = await register(tenant, 40);
    await tenant.call("POST", `/v1/devices/${device.id}/suspend`, { reason: "check" });
    await tenant.call("POST", `/v1/devices/${device.id}/reinstate`, { reason: "check" });
    await runtime.settled();
    const listed = (await tenant.call("GET", `/v1/audit?subject=${device.id}`)).json.items;
    expect(listed.map((record: { action: string }) => record.action)).toEqual([
      "device.registered",
      "device.suspended",
      "device.reinstated",
    ]);
    for (const record of listed) {
      expect(record).toMatchObject({ subject: device.id, feed: expect.any(Array), prevHash: expect.any(String) });
      expect(chainHash(record.prevHash, unhashed(record))).toBe(record.hash);
    }
  });

  it("finds a feed version that names a moved shard's head wrongly, even re-hashed to chain (versions name only the heads that moved)", async () => {
    const tenant = await tenantClient(runtime, "version-heads");
    await register(tenant, 41);
    await register(tenant, 42);
    expect((await tenant.call("GET", "/v1/audit/verify?full=true")).json).toMatchObject({ valid: true });
    const { Items } = await runtime.ports.db.send(
      new QueryCommand({
        TableName: runtime.ports.tables.audit,
        KeyConditionExpression: "pk = :p",
        ExpressionAttributeValues: { ":p": feedPartition(tenant.tenant.id) },
        ScanIndexForward: false,
        Limit: 1,
      }),
    );
    const original = Items![0]!;
    const {
      pk,
      sk,
      expiresAt,
      hash: _hash,
      ...newest
    } = original as Record<string, unknown> & {
      heads: Record<string, string>;
      vector: number[];
    };
    const [moved] = Object.keys(newest.heads);
    expect(moved).toBeDefined();
    // A forger keeps the version's own hash consistent.
    const forge = async (heads: Record<string, string>) => {
      // The hash covers the entries themselves (stored deflated).
      const forged = { ...newest, entries: feedVersionSchema.shape.entries.parse(newest.entries), heads };
      await runtime.ports.db.send(
        new PutCommand({
          TableName: runtime.ports.tables.audit,
          Item: { pk, sk, expiresAt, ...forged, hash: versionHash(forged as never) },
        }),
      );
      return (await tenant.call("GET", "/v1/audit/verify?full=true")).json;
    };
    // The shard's previous head instead of its new one.
    expect(await forge({ ...newest.heads, [moved!]: "0".repeat(64) })).toMatchObject({
      valid: false,
      brokenAt: { shard: "feed", seq: newest.version, reason: expect.stringContaining(`shard ${moved} head`) },
    });
    // A head that did not move, named with its true hash (a shard still at 0 is at the genesis hash): not the canonical form.
    const still = newest.vector.indexOf(0);
    expect(await forge({ ...newest.heads, [String(still)]: "0".repeat(64) })).toMatchObject({
      valid: false,
      brokenAt: { shard: "feed", seq: newest.version, reason: "feed version's heads are not those of the shards that moved" },
    });
    await runtime.ports.db.send(new PutCommand({ TableName: runtime.ports.tables.audit, Item: original }));
    expect((await tenant.call("GET", "/v1/audit/verify?full=true")).json).toMatchObject({ valid: true });
  });

  it("verifies without writing: a viewer's GET (or an admin's) leaves the stored checkpoint as it was (review 73)", async () => {
    // GET /v1/audit/verify signed and moved the checkpoint: a write by a read-only key.
    const tenant = await tenantClient(runtime, "read-only-verify");
    await register(tenant, 30);
    const viewer = (await tenant.call("POST", "/v1/keys", { name: "auditor", role: "viewer" })).json.token as string;
    const stored = async () =>
      (
        await runtime.ports.db.send(
          new GetCommand({ TableName: runtime.ports.tables.control, Key: auditCheckpointKey(tenant.tenant.id), ConsistentRead: true }),
        )
      ).Item;
    expect((await call(runtime, viewer, "GET", "/v1/audit/verify")).json).toMatchObject({ valid: true, from: 0, checked: 3 });
    expect(await stored()).toBeUndefined();
    // Moving it is an admin's POST (or the archiver's hourly run), not a viewer's.
    const refused = await call(runtime, viewer, "POST", "/v1/audit/checkpoint");
    expect([refused.status, refused.headers.get("content-type"), refused.json.type]).toEqual([
      403,
      "application/problem+json",
      "urn:simroot:problem:auth.forbidden",
    ]);
    expect(await stored()).toBeUndefined();
    const moved = await tenant.call("POST", "/v1/audit/checkpoint");
    expect(moved.json).toMatchObject({ valid: true, from: 0, checked: 3 });
    const signed = await stored();
    expect(signed).toMatchObject({ seq: moved.json.lastSeq, hash: moved.json.lastHash });
    await register(tenant, 31);
    expect((await call(runtime, viewer, "GET", "/v1/audit/verify")).json).toMatchObject({ valid: true, from: signed!.seq, checked: 1 });
    expect((await tenant.call("GET", "/v1/audit/verify")).json).toMatchObject({ valid: true, from: signed!.seq, checked: 1 });
    expect((await tenant.call("GET", "/v1/audit/verify?full=true")).json).toMatchObject({ valid: true, from: 0, checked: 4 });
    expect(await stored()).toEqual(signed);
  });

  it("verifies O(new records) per call from a signed checkpoint; the whole chain is an admin's walk", async () => {
    const tenant = await tenantClient(runtime, "checkpoints");
    const tenantId = tenant.tenant.id;
    const devices: { id: string }[] = [];
    for (let n = 0; n < 5; n++) devices.push(await register(tenant, 10 + n));
    const viewer = (await tenant.call("POST", "/v1/keys", { name: "auditor", role: "viewer" })).json.token as string;
    // The tenant, 5 devices and the key: 7 records over the ledger shards; lastSeq is the feed version reached.
    // The admin signs the point reached (as the hourly archiver does).
    const first = (await tenant.call("POST", "/v1/audit/checkpoint")).json;
    expect(first).toMatchObject({ valid: true, from: 0, checked: 7 });
    expect(first.lastSeq).toBeGreaterThan(0);
    await register(tenant, 20);
    await register(tenant, 21);
    // Only what came after the checkpoint is walked.
    const second = (await call(runtime, viewer, "GET", "/v1/audit/verify")).json;
    expect(second).toMatchObject({ valid: true, from: first.lastSeq, checked: 2 });
    expect(second.lastSeq).toBeGreaterThan(first.lastSeq);
    expect((await tenant.call("POST", "/v1/audit/checkpoint")).json).toMatchObject({ valid: true, from: first.lastSeq, checked: 2 });
    expect((await call(runtime, viewer, "GET", "/v1/audit/verify")).json).toMatchObject({
      valid: true,
      from: second.lastSeq,
      checked: 0,
      lastSeq: second.lastSeq,
    });
    // The whole walk: admins only.
    const denied = await call(runtime, viewer, "GET", "/v1/audit/verify?full=true");
    expect(denied.status).toBe(403);
    expect(denied.headers.get("content-type")).toMatch(/problem\+json/);
    expect((await tenant.call("GET", "/v1/audit/verify?full=true")).json).toMatchObject({ valid: true, from: 0, checked: 9 });

    // A record altered inside the checkpointed prefix: the admin's full walk finds it.
    const early = await recordAbout(tenantId, devices[2]!.id);
    await alter(early.key);
    expect((await tenant.call("GET", "/v1/audit/verify?full=true")).json).toMatchObject({
      valid: false,
      brokenAt: { shard: early.shard, seq: early.seq, reason: "hash does not match the record's content" },
    });
    // A record after the checkpoint must chain from the signed shard hash.
    const late = await recordAbout(tenantId, (await register(tenant, 22)).id);
    await alter(late.key);
    expect((await call(runtime, viewer, "GET", "/v1/audit/verify")).json).toMatchObject({
      valid: false,
      from: second.lastSeq,
      brokenAt: { shard: late.shard, seq: late.seq },
    });
    // An admin's move of a walk that does not verify reports the break and leaves the checkpoint where it is.
    expect((await tenant.call("POST", "/v1/audit/checkpoint")).json).toMatchObject({ valid: false, from: second.lastSeq });
    expect((await call(runtime, viewer, "GET", "/v1/audit/verify")).json).toMatchObject({ valid: false, from: second.lastSeq });
    // Someone who can write the store but holds no key moves the checkpoint past his change: refused.
    await runtime.ports.db.send(
      new UpdateCommand({
        TableName: runtime.ports.tables.control,
        Key: auditCheckpointKey(tenantId),
        UpdateExpression: "SET seq = :s",
        ExpressionAttributeValues: { ":s": second.lastSeq + 1 },
      }),
    );
    expect((await call(runtime, viewer, "GET", "/v1/audit/verify")).json).toMatchObject({
      valid: false,
      brokenAt: { reason: "the audit checkpoint is not signed by the control plane's key" },
    });
  });
});

describe("a time-bounded walk of the audit trail (review 113)", () => {
  /** Ports whose audit queries are counted. */
  const counting = () => {
    const counts = { queries: 0 };
    const ports = {
      ...runtime.ports,
      db: {
        send: (command: { constructor: { name: string }; input: { TableName?: string } }) => {
          if (command.constructor.name === "QueryCommand" && command.input.TableName === runtime.ports.tables.audit) counts.queries += 1;
          return runtime.ports.db.send(command as never);
        },
      } as unknown as typeof runtime.ports.db,
    };
    return { counts, ports };
  };

  it("reads at least 100 records a query, not what the page still lacks", async () => {
    const tenant = await tenantClient(runtime);
    const ctx = { tenantId: tenant.tenant.id, actor: `key:${tenant.keyId}`, requestId: "r113-audit" };
    await new Promise((resolve) => setTimeout(resolve, 20));
    const bound = new Date().toISOString();
    await new Promise((resolve) => setTimeout(resolve, 20));
    // 150 records after the bound (keys: the tenant's shard 0).
    for (let n = 0; n < 150; n += 15)
      await Promise.all(Array.from({ length: 15 }, (_, k) => tenant.call("POST", "/v1/keys", { name: `k-${n + k}`, role: "viewer" })));
    const before = (await listAudit(runtime.ports, ctx, { to: bound, limit: 1000 })).items.length;
    expect(before).toBeGreaterThan(0);
    const { counts, ports } = counting();
    const page = await listAudit(ports, ctx, { to: bound, limit: before + 1 });
    expect({ items: page.items.length, next: page.next }).toEqual({ items: before, next: undefined });
    // Shard 0 in two reads of 100, one for each other shard (one read a record: 150 and more).
    expect(counts.queries).toBeLessThanOrEqual(16 + 2);
  });

  it("reads a bounded number of records a page, and hands a cursor for the rest", async () => {
    const tenant = await tenantClient(runtime);
    const ctx = { tenantId: tenant.tenant.id, actor: `key:${tenant.keyId}`, requestId: "r113-audit" };
    // 2,500 records of a shard, older than the bound (copies of the tenant's first record, as months of trail).
    const [first] = (
      await runtime.ports.db.send(
        new QueryCommand({
          TableName: runtime.ports.tables.audit,
          KeyConditionExpression: "pk = :p",
          ExpressionAttributeValues: { ":p": auditPartition(tenant.tenant.id, 0) },
          Limit: 1,
        }),
      )
    ).Items!;
    const items = Array.from({ length: 2_500 }, (_, n) => ({ ...first, pk: auditPartition(tenant.tenant.id, 5), sk: auditSortKey(n + 1) }));
    for (let n = 0; n < items.length; n += 25)
      await runtime.ports.db.send(
        new BatchWriteCommand({
          RequestItems: { [runtime.ports.tables.audit]: items.slice(n, n + 25).map((Item) => ({ PutRequest: { Item } })) },
        }),
      );
    // A bound no record matches: each page reads at most 1,000 records (and the queries to reach them), then answers.
    const from = new Date(Date.now() + 60_000).toISOString();
    let cursor: string | undefined;
    const pages: { items: number; queries: number }[] = [];
    do {
      const { counts, ports } = counting();
      const page = await listAudit(ports, ctx, { from, limit: 10, ...(cursor ? { cursor } : {}) });
      pages.push({ items: page.items.length, queries: counts.queries });
      cursor = page.next;
    } while (cursor && pages.length < 10);
    expect(cursor).toBeUndefined();
    expect(pages.every((page) => page.items === 0 && page.queries <= 16)).toBe(true);
    expect(pages.length).toBeGreaterThanOrEqual(3);
  });
});
