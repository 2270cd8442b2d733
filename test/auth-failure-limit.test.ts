/**
 * Failed authentications are limited per client address before any work (review 89): each request with bad
 * credentials cost a store read and a signature check, and nothing limited them before authentication. Served over
 * HTTP by the local runtime (the limit is its HTTP layer's), 3 failures a minute here.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { countSourceReads } from "./support/source-reads.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
let laptop: TestRuntime;
beforeAll(async () => {
  // This test's client is on loopback, which the limit counts only when told to.
  runtime = await startTestRuntime({ port: 0, authLimits: { failures: 3, windowSeconds: 60, maxAddresses: 100, loopback: true } });
  laptop = await startTestRuntime({ port: 0, authLimits: { failures: 3, windowSeconds: 60, maxAddresses: 100 } });
});
afterAll(async () => {
  await laptop.stop();
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

  it("does not count loopback clients unless told to: on a laptop the console, the demo and local PEPs share 127.0.0.1", async () => {
    const tenant = await tenantClient(laptop, "laptop");
    for (let n = 0; n < 5; n++) {
      expect((await fetch(`${laptop.url}/v1/devices`, { headers: { authorization: "Bearer sr_key_wrong" } })).status).toBe(401);
    }
    const valid = await fetch(`${laptop.url}/v1/devices`, { headers: { authorization: `Bearer ${tenant.token}` } });
    expect(valid.status).toBe(200);
  });
});
