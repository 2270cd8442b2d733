/**
 * Failed authentications are limited per client address before any work (review 89): each request with bad
 * credentials cost a store read and a signature check, and nothing limited them before authentication. 3 failures a
 * minute here. Counted across instances that share nothing but the store (the limit held in each process's memory let
 * an address fail N times the limit on N instances, and did not run in AWS at all).
 */
import { randomBytes } from "node:crypto";
import { get } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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

describe("failed authentications per client address", () => {
  it("past the limit, an address is answered 429 with Retry-After before anything is read, for any credentials", async () => {
    const tenant = await tenantClient(runtime, "limited");
    const { source } = (await tenant.call("POST", "/v1/sources", { name: "feed", format: "simroot" })).json;
    const ingest = () =>
      fetch(`${runtime.url}${source.ingestPath}`, { method: "POST", headers: standardWebhookHeaders(wrongSecret, body), body });
    const reads = countSourceReads(runtime, source.id);
    try {
      expect((await fetch(`${runtime.url}/v1/devices`, { headers: { authorization: "Bearer sr_key_wrong" } })).status).toBe(401);
      expect([(await ingest()).status, (await ingest()).status]).toEqual([401, 401]);
      reads.counted.reads = 0;

      const refused = await ingest();
      expect(refused.status).toBe(429);
      expect(refused.headers.get("content-type")).toBe("application/problem+json");
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(Number(refused.headers.get("retry-after"))).toBeLessThanOrEqual(60);
      expect(await refused.json()).toMatchObject({ type: "urn:simroot:problem:auth.too_many_failures", status: 429 });
      expect(reads.counted.reads).toBe(0);
      // A valid key from that address waits too: the address is what is limited.
      const valid = await fetch(`${runtime.url}/v1/devices`, { headers: { authorization: `Bearer ${tenant.token}` } });
      expect(valid.status).toBe(429);
    } finally {
      reads.stop();
    }
  });

  it("counts an address's failures across instances: an instance refuses once the failures at all of them reach the limit", async () => {
    // From another address (127.0.0.2, loopback too): the first test spent 127.0.0.1's count on these tables.
    const wrong = (instance: TestRuntime) =>
      new Promise<{ status: number; json: () => unknown }>((resolve, reject) => {
        const request = get(
          `${instance.url}/v1/devices`,
          { localAddress: "127.0.0.2", headers: { authorization: "Bearer sr_key_wrong" } },
          (response) => {
            const chunks: Buffer[] = [];
            response.on("data", (chunk: Buffer) => chunks.push(chunk));
            response.on("end", () =>
              resolve({ status: response.statusCode ?? 0, json: () => JSON.parse(Buffer.concat(chunks).toString("utf8")) }),
            );
          },
        );
        request.on("error", reject);
      });
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
