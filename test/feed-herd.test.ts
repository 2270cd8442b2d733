/**
 * The feed under herds of enforcement points, and across instances of the control plane
 * (two runtimes over the same tables, as two Lambda instances or two processes would be).
 * Store reads are counted on the runtime's real DynamoDB client.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FeedResponse } from "@simroot/core";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
let other: TestRuntime;
beforeAll(async () => {
  const tablePrefix = `herd${Date.now().toString(36)}-`;
  runtime = await startTestRuntime({ tablePrefix });
  // Instances of one deployment share its push channel (IoT Core in AWS, one feed hub locally).
  other = await startTestRuntime({ tablePrefix, feedHubUrl: runtime.feedHubUrl });
});
afterAll(async () => {
  await other.stop();
  await runtime.stop();
});

/** Counts the reads `runtime` sends to each table, by command. */
function countReads(of: TestRuntime) {
  const counts = new Map<string, number>();
  of.ports.db.middlewareStack.add(
    (next, context) => async (args) => {
      const table = (args.input as { TableName?: string }).TableName ?? "";
      const key = `${context.commandName}|${table}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      return next(args);
    },
    { step: "initialize", name: `countReads${Math.random()}` },
  );
  return {
    of: (command: string, table: string) => counts.get(`${command}|${table}`) ?? 0,
    reset: () => counts.clear(),
  };
}

async function pepOf(admin: Awaited<ReturnType<typeof tenantClient>>) {
  return (await admin.call("POST", "/v1/keys", { name: "edge", role: "pep" })).json.token as string;
}

const versionOf = async (on: TestRuntime, pep: string) =>
  ((await call(on, pep, "GET", "/v1/feed")).json as FeedResponse).signed.head.version;

describe("the feed under a herd of enforcement points", () => {
  it("answers every long poll woken by one commit with the same signed bytes, reading no deltas from the store", async () => {
    const admin = await tenantClient(runtime, "herd");
    const pep = await pepOf(admin);
    const device = (await admin.call("POST", "/v1/devices", { imsi: "208010000000101" })).json;
    const version = await versionOf(runtime, pep);
    const reads = countReads(runtime);

    const polls = Array.from({ length: 50 }, () =>
      call(runtime, pep, "GET", `/v1/feed?since=${version}&wait=20`, undefined, { "if-none-match": `"${version}"` }),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reads.of("QueryCommand", runtime.ports.tables.audit)).toBe(0);
    await admin.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" });
    const answers = await Promise.all(polls);

    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(new Set(answers.map((answer) => answer.text)).size).toBe(1);
    expect(answers[0]!.json.entries).toEqual([
      expect.objectContaining({ kind: "device", key: device.id, value: expect.objectContaining({ state: "revoked" }) }),
    ]);
    expect(reads.of("QueryCommand", runtime.ports.tables.audit)).toBe(0);

    // The herd re-polls at the new head: it waits without reading deltas, and without a head read per PEP.
    const next = answers[0]!.json.signed.head.version as number;
    reads.reset();
    const waiting = Array.from({ length: 50 }, () =>
      call(runtime, pep, "GET", `/v1/feed?since=${next}&wait=1`, undefined, { "if-none-match": `"${next}"` }),
    );
    const idle = await Promise.all(waiting);
    expect(idle.every((answer) => answer.status === 304)).toBe(true);
    expect(reads.of("QueryCommand", runtime.ports.tables.audit)).toBe(0);
    expect(reads.of("GetCommand", runtime.ports.tables.control)).toBeLessThan(10);
  });

  it("serves a commit's entries from memory exactly as another instance reads them from the store", async () => {
    const admin = await tenantClient(runtime, "same");
    const pep = await pepOf(admin);
    const device = (await admin.call("POST", "/v1/devices", { imsi: "208010000000102", labels: { fleet: "meters", site: "north" } })).json;
    const version = await versionOf(runtime, pep);

    const woken = call(runtime, pep, "GET", `/v1/feed?since=${version}&wait=20`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await admin.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "anomaly" });
    const fromMemory = (await woken).json as FeedResponse;
    const fromStore = (await call(other, pep, "GET", `/v1/feed?since=${version}`)).json as FeedResponse;

    expect(fromMemory.entries.length).toBeGreaterThan(0);
    expect(fromStore.entries).toEqual(fromMemory.entries);
    expect(fromStore.signed.head.contentHash).toBe(fromMemory.signed.head.contentHash);
    expect(fromStore.signed.head.version).toBe(fromMemory.signed.head.version);
  });

  it("wakes a long poll held by an instance that did not make the commit", async () => {
    const admin = await tenantClient(runtime, "elsewhere");
    const pep = await pepOf(admin);
    const device = (await admin.call("POST", "/v1/devices", { imsi: "208010000000103" })).json;
    const version = await versionOf(other, pep);

    const started = Date.now();
    const held = call(other, pep, "GET", `/v1/feed?since=${version}&wait=20`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await admin.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" });
    const answer = await held;
    expect(answer.status).toBe(200);
    expect(answer.json.entries[0]).toMatchObject({ kind: "device", key: device.id, value: { state: "revoked" } });
    // Woken by the push channel (or, failing it, a head poll), not at the end of the wait.
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("stops accepting an API key revoked on another instance within a second", async () => {
    const admin = await tenantClient(runtime, "keys");
    const created = (await admin.call("POST", "/v1/keys", { name: "edge", role: "pep" })).json;
    expect((await call(other, created.token, "GET", "/v1/feed/keys")).status).toBe(200);

    expect((await admin.call("DELETE", `/v1/keys/${created.key.keyId}`)).status).toBe(200);
    expect((await call(runtime, created.token, "GET", "/v1/feed/keys")).status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await call(other, created.token, "GET", "/v1/feed/keys")).status).toBe(401);
  });
});
