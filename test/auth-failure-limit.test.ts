/**
 * Failed authentications are limited per client address before any work (review 89): each request with bad
 * credentials cost a store read and a signature check, and nothing limited them before authentication. 3 failures a
 * minute here. Counted across instances that share nothing but the store (the limit held in each process's memory let
 * an address fail N times the limit on N instances, and did not run in AWS at all).
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "node:http";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countFailure, failuresSpent } from "@simroot/core/access/auth-failures";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { countSourceReads } from "./support/source-reads.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
let laptop: TestRuntime;
let other: TestRuntime;
beforeAll(async () => {
  // This test's client is on loopback, which the limit counts only when told to.
  const limits = { failures: 3, windowSeconds: 60, loopback: true };
  const tablePrefix = `af${randomBytes(4).toString("hex")}-`;
  runtime = await startTestRuntime({ port: 0, tablePrefix, authLimits: limits });
  // A second instance on the same tables, sharing no memory with the first (as two Lambda instances).
  other = await startTestRuntime({ port: 0, tablePrefix, authLimits: limits });
  laptop = await startTestRuntime({ port: 0, authLimits: { failures: 3, windowSeconds: 60 } });
});
afterAll(async () => {
  await laptop.stop();
  await other.stop();
  await runtime.stop();
});

const body = JSON.stringify([
  {
    type: "sim.detached",
    dedupeKey: "limit-1",
    occurredAt: "2026-11-22T06:01:00Z",
    device: { imsi: "208011234567891" },
    sourceType: "t",
    data: {},
  },
]);
const wrongSecret = `whsec_${Buffer.from("not the secret of this source").toString("base64")}`;

/** A request from a local address of this machine's own (127.0.0.0/8 is all loopback), as another client would send it. */
function send(
  instance: TestRuntime,
  from: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: () => unknown }>((resolve, reject) => {
    const sent = request(
      `${instance.url}${path}`,
      { method: init.method ?? "GET", localAddress: from, headers: init.headers },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            json: () => JSON.parse(Buffer.concat(chunks).toString("utf8")),
          }),
        );
      },
    );
    sent.on("error", reject);
    sent.end(init.body);
  });
}

const wrongKey = { authorization: "Bearer sr_key_wrong" };

/**
 * Waits, when the minute is about to end, for the next one: the limit counts in fixed windows of 60 s aligned to the
 * clock, and a test whose failures straddled two windows saw its last one counted in a new window (401, not 429).
 */
async function awayFromWindowEdge(seconds = 10) {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 60_000 - seconds * 1000) await sleep(60_000 - intoMinute + 100);
}

describe("failed authentications per client address", () => {
  it("past the limit, an address is answered 429 with Retry-After before anything is read, for any key", async () => {
    await awayFromWindowEdge();
    const tenant = await tenantClient(runtime, "limited");
    const from = "127.0.0.3";
    expect([
      (await send(runtime, from, "/v1/devices", { headers: wrongKey })).status,
      (await send(runtime, from, "/v1/devices", { headers: wrongKey })).status,
      (await send(runtime, from, "/v1/devices", { headers: wrongKey })).status,
    ]).toEqual([401, 401, 401]);
    const refused = await send(runtime, from, "/v1/devices", { headers: wrongKey });
    expect(refused.status).toBe(429);
    expect(refused.headers["content-type"]).toBe("application/problem+json");
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    expect(Number(refused.headers["retry-after"])).toBeLessThanOrEqual(60);
    expect(refused.json()).toMatchObject({ type: "urn:simroot:problem:auth.too_many_failures", status: 429 });
    // A valid key from that address waits too: the address is what is limited.
    expect((await send(runtime, from, "/v1/devices", { headers: { authorization: `Bearer ${tenant.token}` } })).status).toBe(429);
    // What presents no credential is neither counted nor refused: the health check, the console.
    expect((await send(runtime, from, "/health")).status).toBe(200);
  });

  it("counts no request that presents no credential: a web page cannot spend its visitors' address (review 91)", async () => {
    // An image's GET, or anything a page makes a browser send across origins, carries no Authorization header.
    const tenant = await tenantClient(runtime, "no-credential");
    const from = "127.0.0.4";
    for (let n = 0; n < 6; n++) expect((await send(runtime, from, "/v1/devices")).status).toBe(401);
    expect((await send(runtime, from, "/v1/devices", { headers: { authorization: `Bearer ${tenant.token}` } })).status).toBe(200);
  });

  it("counts a source's failed deliveries apart from every other source's, before anything of the source is read", async () => {
    await awayFromWindowEdge();
    // Providers post every customer's webhooks from shared addresses: one failing source there must not stop the others.
    const tenant = await tenantClient(runtime, "sources");
    const failing = (await tenant.call("POST", "/v1/sources", { name: "rotated", format: "simroot" })).json;
    const other = (await tenant.call("POST", "/v1/sources", { name: "healthy", format: "simroot" })).json;
    const from = "127.0.0.5";
    const deliver = (source: { ingestPath: string }, secret: string) =>
      send(runtime, from, source.ingestPath, { method: "POST", headers: standardWebhookHeaders(secret, body), body });
    const reads = countSourceReads(runtime, failing.source.id);
    try {
      const statuses = [];
      for (let n = 0; n < 3; n++) statuses.push((await deliver(failing.source, wrongSecret)).status);
      expect(statuses).toEqual([401, 401, 401]);
      reads.counted.reads = 0;
      const refused = await deliver(failing.source, failing.credentials.webhookSecret);
      expect(refused.status).toBe(429);
      expect(refused.json()).toMatchObject({ type: "urn:simroot:problem:auth.too_many_failures" });
      expect(reads.counted.reads).toBe(0);
    } finally {
      reads.stop();
    }
    expect((await deliver(other.source, other.credentials.webhookSecret)).status).toBe(202);
  });

  it("writes nothing for a delivery to a source id tried once: spraying ids that name no source costs the store no write", async () => {
    await awayFromWindowEdge();
    // Each id was a scope of its own, and its first failure was written to the store at once: one counter item per
    // request, which no limit bounded (a new id is never spent), from a client that holds no credential at all.
    const from = "127.0.0.6";
    for (let n = 0; n < 25; n++) {
      const path = `/v1/ingest/src_${randomBytes(10).toString("hex")}`;
      const answer = await send(runtime, from, path, { method: "POST", headers: standardWebhookHeaders(wrongSecret, body), body });
      expect(answer.status).toBe(401);
    }
    const { Items } = await runtime.ports.db.send(
      new ScanCommand({
        TableName: runtime.ports.tables.control,
        FilterExpression: "begins_with(pk, :counters)",
        ExpressionAttributeValues: { ":counters": `rate#authfail:${from}` },
      }),
    );
    expect(Items ?? []).toEqual([]);
    // One id tried again is counted as before, and refused past the limit.
    const again = `/v1/ingest/src_${randomBytes(10).toString("hex")}`;
    const statuses = [];
    for (let n = 0; n < 4; n++)
      statuses.push(
        (await send(runtime, from, again, { method: "POST", headers: standardWebhookHeaders(wrongSecret, body), body })).status,
      );
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  it("keeps an address's spent window while first failures of ever new source ids pour in (review 93)", async () => {
    await awayFromWindowEdge();
    // Each new id's first failure, held in memory, took a place among the windows this instance remembers (10,000, the
    // least recently used forgotten): a spray of new ids made it forget that an address had spent its failures, and the
    // address its next few failures, every 10,000 requests; and made each rate-limited key's window be written again.
    const limit = { failures: 3, windowSeconds: 60, loopback: true };
    const address = "192.0.2.77";
    for (let n = 0; n < 3; n++) await countFailure(runtime.ports, address, limit);
    expect(failuresSpent(runtime.ports, address, limit)?.code).toBe("auth.too_many_failures");
    for (let n = 0; n < 10_001; n++) await countFailure(runtime.ports, "198.51.100.7", limit, `source:src_spray${n}`);
    expect(failuresSpent(runtime.ports, address, limit)?.code).toBe("auth.too_many_failures");
  });

  it("counts an address's failures across instances: an instance refuses once the failures at all of them reach the limit", async () => {
    await awayFromWindowEdge();
    const wrong = (instance: TestRuntime) => send(instance, "127.0.0.2", "/v1/devices", { headers: wrongKey });
    expect([(await wrong(runtime)).status, (await wrong(runtime)).status]).toEqual([401, 401]);
    // The third failure, at the other instance: counting it there learns the first instance's two.
    expect((await wrong(other)).status).toBe(401);
    // The limit reached at both together: the instance that counted last knows it, and refuses at once (counted per
    // process, it had one failure of its three).
    const refused = await wrong(other);
    expect(refused.status).toBe(429);
    expect(refused.json()).toMatchObject({ type: "urn:simroot:problem:auth.too_many_failures", status: 429 });
    // The first instance learns it when it next counts: at most one more failure there.
    const next = [(await wrong(runtime)).status, (await wrong(runtime)).status];
    expect(next[1]).toBe(429);
  });

  it("does not count loopback clients unless told to: on a laptop the console, the demo and local PEPs share 127.0.0.1", async () => {
    const tenant = await tenantClient(laptop, "laptop");
    for (let n = 0; n < 5; n++) {
      expect((await fetch(`${laptop.url}/v1/devices`, { headers: { authorization: "Bearer sr_key_wrong" } })).status).toBe(401);
    }
    const valid = await fetch(`${laptop.url}/v1/devices`, { headers: { authorization: `Bearer ${tenant.token}` } });
    expect(valid.status).toBe(200);
  });
});
