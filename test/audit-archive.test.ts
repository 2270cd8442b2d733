/**
 * Audit retention, archived before expiry (core audit/archive.ts): records and feed versions carry
 * DynamoDB's TTL; the archiver copies what expires within the lead out, verified, and moves a
 * signed checkpoint; once TTL has removed what was archived, verification starts from that
 * checkpoint, and a PEP whose next versions are gone is sent to a snapshot. DynamoDB Local does not
 * run TTL deletions: the test removes the expired items itself, as TTL would. The S3 store is the
 * real client against a loopback server speaking S3's PutObject.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, type QueryCommandOutput, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import {
  archivableUntil,
  archiveAudit,
  archiveCheckpointKey,
  archiveLeadDays,
  auditPartition,
  chainHash,
  directoryArchiveStore,
  documentClient,
  feedHeadKey,
  feedPartition,
  fileSigner,
  feedSortKey,
  memorySigner,
  s3ArchiveStore,
  versionHash,
  feedVersionSchema,
  shardCount,
  unhashed,
  type AuditRecord,
  type FeedSigner,
} from "@simroot/core";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

const retentionDays = 90;
const day = 86_400_000;
let runtime: TestRuntime;
let signer: FeedSigner;

beforeAll(async () => {
  const keyPath = join(await mkdtemp(join(tmpdir(), "simroot-archive-")), "feed-signing-key.pem");
  runtime = await startTestRuntime({ feedSigningKeyPath: keyPath, auditArchiveMs: 0 });
  signer = await fileSigner(keyPath);
});
afterAll(() => runtime.stop());

/** The ports as the archiver sees them `days` from now. */
const later = (days: number) => ({ ...runtime.ports, now: () => new Date(Date.now() + days * day) });

async function queryAll(pk: string) {
  const items: NonNullable<QueryCommandOutput["Items"]> = [];
  let cursor: Record<string, unknown> | undefined;
  do {
    const page = await runtime.ports.db.send(
      new QueryCommand({
        TableName: runtime.ports.tables.audit,
        KeyConditionExpression: "pk = :p",
        ExpressionAttributeValues: { ":p": pk },
        ExclusiveStartKey: cursor,
      }),
    );
    items.push(...(page.Items ?? []));
    cursor = page.LastEvaluatedKey;
  } while (cursor);
  return items;
}

const shardRecords = async (tenantId: string) =>
  (await Promise.all(Array.from({ length: shardCount }, (_, shard) => queryAll(auditPartition(tenantId, shard))))).flat();

/** The `AuditArchiveMarginSeconds` figures the archiver function prints (EMF on stdout) while `body` runs. */
async function printedMargins(body: () => Promise<unknown>): Promise<number[]> {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
    lines.push(...String(chunk).split("\n").filter(Boolean));
    return write(chunk, ...(rest as []));
  });
  try {
    await body();
  } finally {
    spy.mockRestore();
  }
  return lines.flatMap((line) => {
    const doc = JSON.parse(line.startsWith("{") ? line : "{}") as { _aws?: unknown; AuditArchiveMarginSeconds?: number };
    return doc._aws && doc.AuditArchiveMarginSeconds !== undefined ? [doc.AuditArchiveMarginSeconds] : [];
  });
}

/** Someone who can write the store changes a record of the tenant's: its trail no longer verifies. */
async function tamperWithARecord(tenantId: string) {
  const [record] = await shardRecords(tenantId);
  await runtime.ports.db.send(
    new UpdateCommand({
      TableName: runtime.ports.tables.audit,
      Key: { pk: record!.pk, sk: record!.sk },
      UpdateExpression: "SET actor = :a",
      ExpressionAttributeValues: { ":a": "key:someone-else" },
    }),
  );
}

async function fleet(name: string, devices: number) {
  const tenant = await tenantClient(runtime, name);
  const ids: string[] = [];
  for (let n = 0; n < devices; n++) {
    const device = (await tenant.call("POST", "/v1/devices", { imsi: `20801${String(1000000000 + n).padStart(10, "0")}` })).json;
    ids.push(device.id);
  }
  await tenant.call("POST", `/v1/devices/${ids[0]}/revoke`, { reason: "lost" });
  return { tenant, ids, tenantId: tenant.tenant.id as string };
}

/** What an archived object says, line by line. */
function parseArchive(text: string) {
  const lines = text
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line));
  return {
    from: lines[0].from,
    to: lines.at(-1).to,
    records: lines.filter((line) => line.record).map((line) => line.record as AuditRecord),
    versions: lines.filter((line) => line.version).map((line) => line.version),
  };
}

describe("the audit archive", () => {
  it("gives every record and feed version a TTL of its time plus the retention", async () => {
    const { tenantId } = await fleet("ttl", 2);
    const records = await shardRecords(tenantId);
    const versions = await queryAll(feedPartition(tenantId));
    expect(records.length).toBeGreaterThan(0);
    expect(versions.length).toBeGreaterThan(0);
    for (const item of [...records, ...versions]) {
      expect(item.expiresAt).toBe(Math.floor(Date.parse(item.time) / 1000) + retentionDays * 86_400);
    }
  });

  it("archives nothing that is not about to expire", async () => {
    const { tenantId } = await fleet("young", 1);
    const store = directoryArchiveStore(await mkdtemp(join(tmpdir(), "simroot-archive-")));
    // A day before the lead begins, the records still have 31 days: more than the 30-day lead.
    const result = await archiveAudit(later(retentionDays - archiveLeadDays - 1), signer, store, tenantId, { retentionDays });
    expect(result).toMatchObject({ objects: [], records: 0, checkpoint: undefined });
  });

  it("archives a tenant whose head a stopped sequencing left one version behind, with no change since", async () => {
    const { tenantId } = await fleet("behind", 2);
    const versions = (await queryAll(feedPartition(tenantId))).sort((a, b) => a.version - b.version);
    const before = versions.at(-2)!;
    const last = versions.at(-1)!;
    // The head where a sequencing that wrote the last version and stopped would leave it.
    await runtime.ports.db.send(
      new PutCommand({
        TableName: runtime.ports.tables.control,
        Item: { ...feedHeadKey(tenantId), version: before.version, vector: before.vector, hash: before.hash, updatedAt: before.time },
      }),
    );
    const result = await archiveAudit(
      later(retentionDays - archiveLeadDays + 1),
      signer,
      directoryArchiveStore(await mkdtemp(join(tmpdir(), "simroot-archive-"))),
      tenantId,
      { retentionDays },
    );
    // Every version archived, the last included (the archive stops at the head, which the archiver moved to it).
    expect(result.versions).toBe(versions.length);
    const { Item: head } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }),
    );
    expect(head?.version).toBe(last.version);
  });

  it("copies the trail out, verified, a lead before TTL; verification and the feed carry on once TTL removed it", async () => {
    const { tenant, ids, tenantId } = await fleet("archived", 4);
    const dir = await mkdtemp(join(tmpdir(), "simroot-archive-"));
    const stored = await shardRecords(tenantId);
    const storedVersions = await queryAll(feedPartition(tenantId));
    const pep = (await tenant.call("POST", "/v1/keys", { name: "edge", role: "pep" })).json.token as string;
    const oldHead = (await call(runtime, pep, "GET", "/v1/feed?since=0&wait=0")).json.signed.head.version as number;

    // A day inside the lead: everything committed so far expires within 29 days.
    const when = later(retentionDays - archiveLeadDays + 1);
    const result = await archiveAudit(when, signer, directoryArchiveStore(dir), tenantId, { retentionDays });
    expect(result.objects).toHaveLength(1);
    expect(result.records).toBe(stored.length + 1); // and the key just created
    expect(result.versions).toBeGreaterThanOrEqual(storedVersions.length);

    const files = await readdir(join(dir, "audit", tenantId));
    expect(files).toEqual([result.objects[0]!.split("/").at(-1)]);
    const archive = parseArchive(await readFile(join(dir, result.objects[0]!), "utf8"));
    expect(archive.from).toMatchObject({ tenantId, seq: 0 });
    expect(archive.to).toMatchObject({ tenantId, seq: result.checkpoint!.seq, hash: result.checkpoint!.hash });
    // Anyone can re-walk what was archived: per shard, each record chains from the one before.
    for (let shard = 0; shard < shardCount; shard++) {
      let previous = "0".repeat(64);
      const chain = archive.records.filter((record) => record.shard === shard).sort((a, b) => a.seq - b.seq);
      chain.forEach((record, index) => {
        expect(record.seq).toBe(index + 1);
        expect(record.prevHash).toBe(previous);
        expect(chainHash(previous, unhashed(record))).toBe(record.hash);
        previous = record.hash;
      });
    }
    // Every record was archived at least (lead - 1) days before DynamoDB may drop it.
    for (const record of archive.records) {
      const expiresAt = Date.parse(record.time) + retentionDays * day;
      expect(expiresAt - when.now().getTime()).toBeGreaterThan((archiveLeadDays - 1.01) * day);
    }
    // A second run has nothing more to do, and writes nothing.
    expect((await archiveAudit(when, signer, directoryArchiveStore(dir), tenantId, { retentionDays })).objects).toEqual([]);

    // TTL removes what was archived (as DynamoDB would, later); the tenant keeps changing.
    for (const item of [...(await shardRecords(tenantId)), ...(await queryAll(feedPartition(tenantId)))]) {
      await runtime.ports.db.send(new DeleteCommand({ TableName: runtime.ports.tables.audit, Key: { pk: item.pk, sk: item.sk } }));
    }
    // Nothing after the PEP's version is kept, and nothing newer was committed yet: a snapshot, not "up to date".
    const stranded = await call(runtime, pep, "GET", `/v1/feed?since=${oldHead - 1}&wait=0`);
    expect(stranded.status).toBe(410);
    expect(stranded.json.type).toBe("urn:simroot:problem:feed.snapshot_required");
    await tenant.call("POST", `/v1/devices/${ids[1]}/suspend`, { reason: "maintenance" });
    await tenant.call("POST", `/v1/devices/${ids[2]}/revoke`, { reason: "stolen" });

    // The whole retained chain, and the incremental walk, start from the archive checkpoint.
    const full = (await tenant.call("GET", "/v1/audit/verify?full=true")).json;
    expect(full).toMatchObject({ valid: true, from: result.checkpoint!.seq });
    expect(full.checked).toBeGreaterThanOrEqual(2);
    expect((await tenant.call("GET", "/v1/audit/verify")).json).toMatchObject({ valid: true });

    // A PEP that held a version whose successors are gone is sent to a snapshot, not handed a gap.
    const behind = await call(runtime, pep, "GET", `/v1/feed?since=${oldHead - 1}&wait=0`);
    expect(behind.status).toBe(410);
    expect(behind.json.type).toBe("urn:simroot:problem:feed.snapshot_required");
    // A PEP at the archived head carries on with deltas.
    const current = await call(runtime, pep, "GET", `/v1/feed?since=${result.checkpoint!.seq}&wait=0`);
    expect(current.status).toBe(200);
    expect(current.json.entries.length).toBeGreaterThan(0);
  });

  it("archives nothing from a trail that does not verify", async () => {
    const { tenantId } = await fleet("tampered", 2);
    await tamperWithARecord(tenantId);
    const dir = await mkdtemp(join(tmpdir(), "simroot-archive-"));
    await expect(
      archiveAudit(later(retentionDays - archiveLeadDays + 1), signer, directoryArchiveStore(dir), tenantId, { retentionDays }),
    ).rejects.toMatchObject({ code: "audit.chain_broken" });
    expect(await readdir(dir)).toEqual([]);
  });

  it("prints the least margin of a run that failed, the failing tenant's own included (review 101)", async () => {
    const { handlerFor } = await import("../functions/src/audit-archiver.ts");
    const { tenantId } = await fleet("margin-broken", 1);
    await tamperWithARecord(tenantId);
    // Its first version expires in 10 days: sooner than any other tenant's here.
    const [first] = (await queryAll(feedPartition(tenantId))).sort((a, b) => a.version - b.version);
    const expiresAt = Math.floor(Date.now() / 1000) + 10 * 86_400;
    await runtime.ports.db.send(
      new UpdateCommand({
        TableName: runtime.ports.tables.audit,
        Key: { pk: first!.pk, sk: first!.sk },
        UpdateExpression: "SET expiresAt = :e",
        ExpressionAttributeValues: { ":e": expiresAt },
      }),
    );
    const store = directoryArchiveStore(await mkdtemp(join(tmpdir(), "simroot-archive-")));
    const margins = await printedMargins(() =>
      expect(handlerFor(async () => ({ ports: runtime.ports, signer, store, retentionDays }))()).rejects.toMatchObject({
        code: "audit.archive_failed",
      }),
    );
    expect(margins).toHaveLength(1);
    expect(margins[0]).toBeLessThanOrEqual(expiresAt - Math.floor(Date.now() / 1000) + 1);
    expect(margins[0]).toBeGreaterThan(10 * 86_400 - 120);
  });

  it("prints no margin from a failed run that could not measure it: the alarm takes none as breaching (review 104)", async () => {
    const { handlerFor } = await import("../functions/src/audit-archiver.ts");
    await fleet("margin-unread", 1);
    // The store lists the tenants, and refuses every other read (throttled).
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    client.middlewareStack.add(
      (next) => async (args) => {
        if ((args.input as { IndexName?: string }).IndexName === "byTenant") return next(args);
        throw new Error("throttled");
      },
      { step: "initialize" },
    );
    const store = directoryArchiveStore(await mkdtemp(join(tmpdir(), "simroot-archive-")));
    const margins = await printedMargins(() =>
      expect(handlerFor(async () => ({ ports: { ...runtime.ports, db: client }, signer, store, retentionDays }))()).rejects.toMatchObject({
        code: "audit.archive_failed",
      }),
    );
    expect(margins).toEqual([]);
    client.destroy();
  });

  it("refuses a range rewritten with its hashes recomputed: it no longer leads to the signed checkpoint", async () => {
    const { tenant, ids, tenantId } = await fleet("rewritten", 2);
    // Versions after the range: two seconds later, so they expire (in whole seconds) after it.
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    await tenant.call("POST", `/v1/devices/${ids[1]}/suspend`, { reason: "later" });
    const versions = (await queryAll(feedPartition(tenantId))).sort((a, b) => a.version - b.version);
    const late = versions.at(-1)!;
    // An auditor verifies: the control plane signs the head.
    expect((await tenant.call("GET", "/v1/audit/verify")).json).toMatchObject({ valid: true });
    // Someone who can write the store rewrites the last version of the range (a device's labels), its hash
    // recomputed, which needs no key. The range's hashes chain; its entry no longer carries its record's value.
    const target = versions.filter((version) => version.expiresAt < late.expiresAt).at(-1)!;
    const { pk, sk, expiresAt, hash: _hash, ...content } = target;
    const stored = feedVersionSchema.shape.entries.parse(content.entries);
    const entries = stored.map((entry) =>
      entry.kind === "device" && entry.value ? { ...entry, value: { ...entry.value, labels: { fleet: "forged" } } } : entry,
    );
    expect(entries).not.toEqual(stored);
    const rewritten = { ...content, entries } as Parameters<typeof versionHash>[0];
    await runtime.ports.db.send(
      new PutCommand({
        TableName: runtime.ports.tables.audit,
        Item: { pk, sk, expiresAt, ...rewritten, hash: versionHash(rewritten) },
      }),
    );
    // The archiver's clock: the range expires within the lead, the later versions do not yet.
    const when = { ...runtime.ports, now: () => new Date((late.expiresAt - 1 - archiveLeadDays * 86_400) * 1000) };
    const dir = await mkdtemp(join(tmpdir(), "simroot-archive-"));
    await expect(archiveAudit(when, signer, directoryArchiveStore(dir), tenantId, { retentionDays })).rejects.toMatchObject({
      code: "audit.chain_broken",
      message: expect.stringContaining("does not carry the value of shard"),
    });
    expect(await readdir(dir)).toEqual([]);
  });

  it("refuses an archive checkpoint not signed by the control plane's key, in the archiver and in verification", async () => {
    const { tenant, tenantId } = await fleet("forged", 1);
    // Someone who can write the store moves the archive checkpoint, to hide the records before it.
    await runtime.ports.db.send(
      new PutCommand({
        TableName: runtime.ports.tables.control,
        Item: {
          ...archiveCheckpointKey(tenantId),
          seq: 3,
          hash: "f".repeat(64),
          vector: new Array(shardCount).fill(0),
          shardHashes: new Array(shardCount).fill("0".repeat(64)),
          base: new Array(shardCount).fill(0),
          through: new Date().toISOString(),
          signature: Buffer.alloc(64).toString("base64"),
          keyId: signer.keyId,
        },
      }),
    );
    const store = directoryArchiveStore(await mkdtemp(join(tmpdir(), "simroot-archive-")));
    await expect(archiveAudit(later(retentionDays), signer, store, tenantId, { retentionDays })).rejects.toMatchObject({
      code: "audit.archive_checkpoint_invalid",
    });
    expect((await tenant.call("GET", "/v1/audit/verify?full=true")).json).toMatchObject({
      valid: false,
      brokenAt: { reason: "The audit archive checkpoint is not signed by this control plane's key" },
    });
  });
});

describe("where an archive run may stop", () => {
  /** Feed versions as the sequencer writes them: a run of several versions shares its vector and its time. */
  async function versions(tenantId: string, runs: number[], expiresAt: (run: number) => number | undefined) {
    let version = 0;
    for (const [run, length] of runs.entries()) {
      for (let n = 0; n < length; n++) {
        version++;
        const expiry = expiresAt(run);
        await runtime.ports.db.send(
          new PutCommand({
            TableName: runtime.ports.tables.audit,
            Item: {
              pk: feedPartition(tenantId),
              sk: feedSortKey(version),
              version,
              time: new Date(Date.UTC(2026, 0, 1, 0, run)).toISOString(),
              vector: [run + 1, 0],
              ...(expiry === undefined ? {} : { expiresAt: expiry }),
            },
          }),
        );
      }
    }
    // And the head, where the sequencer leaves it: at the last version (an archive stops at the head).
    await runtime.ports.db.send(
      new PutCommand({ TableName: runtime.ports.tables.control, Item: { ...feedHeadKey(tenantId), version, vector: [runs.length, 0] } }),
    );
  }
  const now = Math.floor(Date.now() / 1000);

  it("ends between sequencing runs when the object is full, never inside one", async () => {
    // Runs of 1, 1, 3, 1 versions (v1, v2, v3-v5, v6), all expiring: an object of at most 4 stops after v2, not at v4.
    await versions("ten_runs", [1, 1, 3, 1], () => now + 86_400);
    expect((await archivableUntil(runtime.ports, "ten_runs", 0, now + 30 * 86_400, 90 * 86_400, 4))?.version).toBe(2);
    expect((await archivableUntil(runtime.ports, "ten_runs", 2, now + 30 * 86_400, 90 * 86_400, 4))?.version).toBe(6);
    expect((await archivableUntil(runtime.ports, "ten_runs", 0, now + 30 * 86_400, 90 * 86_400))?.version).toBe(6);
  });

  it("goes by each version's stored expiry, not by the retention set today", async () => {
    // Written under a 90-day retention, read by an archiver set to 365: what expires within the lead is due all the same.
    await versions("ten_raised", [1, 1, 1], (run) => (run < 2 ? now + 10 * 86_400 : now + 200 * 86_400));
    expect((await archivableUntil(runtime.ports, "ten_raised", 0, now + 30 * 86_400, 365 * 86_400))?.version).toBe(2);
    // A version written before TTLs were: its time plus the retention.
    await versions("ten_legacy", [1], () => undefined);
    expect((await archivableUntil(runtime.ports, "ten_legacy", 0, now + 30 * 86_400, 90 * 86_400))?.version).toBe(1);
  });
});

describe("after a feed key rotation", () => {
  it("trusts an archive checkpoint of the replaced key only once the operator lists it, then signs with the new one", async () => {
    const { tenant, tenantId } = await fleet("rotated", 1);
    const old = memorySigner();
    const store = directoryArchiveStore(await mkdtemp(join(tmpdir(), "simroot-archive-")));
    const when = later(retentionDays - archiveLeadDays + 1);
    const first = await archiveAudit(when, old, store, tenantId, { retentionDays });
    expect(first.objects).toHaveLength(1);
    await tenant.call("POST", "/v1/devices", { imsi: "208015555500001" });
    await expect(archiveAudit(when, signer, store, tenantId, { retentionDays })).rejects.toMatchObject({
      code: "audit.archive_checkpoint_invalid",
      message: expect.stringContaining("SIMROOT_FEED_RETIRED_PUBLIC_KEYS"),
    });
    process.env.SIMROOT_FEED_RETIRED_PUBLIC_KEYS = old.publicKeyPem;
    try {
      const second = await archiveAudit(when, signer, store, tenantId, { retentionDays });
      expect(second.objects).toHaveLength(1);
      expect(second.checkpoint!.seq).toBeGreaterThan(first.checkpoint!.seq);
    } finally {
      delete process.env.SIMROOT_FEED_RETIRED_PUBLIC_KEYS;
    }
    // Re-signed with the current key: trusted without the list.
    expect((await archiveAudit(when, signer, store, tenantId, { retentionDays })).objects).toEqual([]);
  });

  it("reports a checkpoint with missing fields as a break, not an error", async () => {
    const { tenant, tenantId } = await fleet("malformed", 1);
    await runtime.ports.db.send(
      new PutCommand({ TableName: runtime.ports.tables.control, Item: { ...archiveCheckpointKey(tenantId), seq: 2, keyId: signer.keyId } }),
    );
    const answer = await tenant.call("GET", "/v1/audit/verify?full=true");
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ valid: false });
  });
});

describe("the S3 archive store", () => {
  it("puts each object with the SHA-256 checksum S3 verifies, through the real S3 client", async () => {
    const received: { method: string; url: string; headers: Record<string, unknown>; body: Buffer }[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        received.push({ method: request.method!, url: request.url!, headers: request.headers, body: Buffer.concat(chunks) });
        response.writeHead(200, { etag: '"abc"', "x-amz-request-id": "loopback" }).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    try {
      const client = new S3Client({
        region: "eu-west-1",
        endpoint: `http://127.0.0.1:${port}`,
        forcePathStyle: true,
        credentials: { accessKeyId: "AKIDLOOPBACK", secretAccessKey: "loopback" },
      });
      const body = `${JSON.stringify({ from: { seq: 0 } })}\n${JSON.stringify({ to: { seq: 7 } })}\n`;
      await s3ArchiveStore(client, "simroot-audit-archive").put("audit/ten_1/000000000001-000000000007.jsonl", body);
      expect(received).toHaveLength(1);
      const [put] = received;
      expect(put!.method).toBe("PUT");
      expect(put!.url.split("?")[0]).toBe("/simroot-audit-archive/audit/ten_1/000000000001-000000000007.jsonl");
      expect(put!.headers["content-type"]).toBe("application/x-ndjson");
      expect(String(put!.headers.authorization)).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDLOOPBACK\//);
      // The payload and its checksum, whether sent as a header or as an aws-chunked trailer.
      const sha256 = createHash("sha256").update(body).digest("base64");
      const raw = put!.body.toString("utf8");
      if (put!.headers["content-encoding"] === "aws-chunked") {
        expect(raw).toContain(body);
        expect(raw).toContain(`x-amz-checksum-sha256:${sha256}`);
      } else {
        expect(raw).toBe(body);
        expect(put!.headers["x-amz-checksum-sha256"]).toBe(sha256);
      }
    } finally {
      server.close();
    }
  });
});
