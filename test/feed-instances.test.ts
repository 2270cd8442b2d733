/**
 * The feed across control-plane instances that share nothing but the store and the push
 * channel: separate processes, as Lambda instances are. Their head poll is pushed out to a
 * minute here, so a long poll woken within seconds was woken by the channel alone.
 */
import { createPublicKey, randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hubTrigger, PepEngine } from "@simroot/pep";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type { FeedResponse } from "@simroot/core";
import type { ResponseData, Schema } from "@simroot/sdk";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { byNoticeMs, pushedPep } from "./support/feed-polls.ts";
import { startInstance, type Instance } from "./support/instances.ts";

const noHeadPoll = { SIMROOT_FEED_HEAD_POLL_MS: "60000" };
let a: Instance;
let b: Instance;
let local: TestRuntime;
beforeAll(async () => {
  const tablePrefix = `inst${randomBytes(4).toString("hex")}-`;
  const dynamoEndpoint = inject("dynamoEndpoint");
  // One signing key for the deployment (KMS in AWS): a PEP may poll any instance.
  const feedSigningKeyPath = join(await mkdtemp(join(tmpdir(), "simroot-instances-")), "feed-signing-key.pem");
  a = await startInstance({ dynamoEndpoint, tablePrefix, feedSigningKeyPath }, noHeadPoll);
  b = await startInstance({ dynamoEndpoint, tablePrefix, feedSigningKeyPath, feedHubUrl: a.feedHubUrl }, noHeadPoll);
  local = await startTestRuntime({ tablePrefix, feedHubUrl: a.feedHubUrl });
}, 60_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), local?.stop()]);
});

/** A call to one instance over HTTP; `Body` is what the route answers (nothing on 304). */
async function http<Body = unknown>(base: string, token: string, method: string, path: string, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (response.status === 304 ? undefined : await response.json()) as Body };
}

describe("long polls across instances in separate processes", () => {
  it("wake on another instance's commit through the push channel, not at the end of the wait", async () => {
    const admin = await tenantClient(local, "instances");
    const pep = (await http<Schema<"ApiKeyWithToken">>(a.url, admin.token, "POST", "/v1/keys", { name: "edge", role: "pep" })).json.token;
    for (let round = 0; round < 3; round++) {
      const device = (
        await http<Schema<"Device">>(a.url, admin.token, "POST", "/v1/devices", { imsi: `20801000000${String(round).padStart(4, "0")}` })
      ).json;
      const version = (await http<FeedResponse>(b.url, pep, "GET", "/v1/feed")).json.signed.head.version;
      const onB = http<FeedResponse>(b.url, pep, "GET", `/v1/feed?since=${version}&wait=20`);
      const onLocal = call(local, pep, "GET", `/v1/feed?since=${version}&wait=20`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const committed = Date.now();
      expect((await http(a.url, admin.token, "POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
      const answer = await onB;
      expect(answer.status).toBe(200);
      expect(answer.json.entries).toContainEqual(
        expect.objectContaining({ kind: "device", key: device.id, value: expect.objectContaining({ state: "revoked" }) }),
      );
      // The wait was 20 s and B reads the head once a minute: only the channel can have woken it.
      expect(Date.now() - committed).toBeLessThan(5_000);
      const third = await onLocal;
      expect(third.status).toBe(200);
      expect(third.json.entries).toContainEqual(expect.objectContaining({ key: device.id }));
      expect(Date.now() - committed).toBeLessThan(5_000);
    }
  }, 60_000);
});

describe("a PEP on the push channel", () => {
  it("learns a revocation committed on instance A by a short poll of instance B, holding no long poll", async () => {
    const admin = await tenantClient(local, "pushed");
    const pep = (await http<Schema<"ApiKeyWithToken">>(a.url, admin.token, "POST", "/v1/keys", { name: "edge", role: "pep" })).json.token;
    const publicKey = createPublicKey(
      (await http<ResponseData<"/v1/feed/keys", "get">>(a.url, pep, "GET", "/v1/feed/keys")).json.keys[0]!.publicKeyPem,
    );
    const device = (await http<Schema<"Device">>(a.url, admin.token, "POST", "/v1/devices", { imsi: "208010000009001" })).json;
    const trigger = hubTrigger(a.feedHubUrl);
    const { state, sync, polls } = await pushedPep({ url: b.url, apiKey: pep, publicKey, tenantId: admin.tenant.id, trigger });
    const engine = new PepEngine(state);
    try {
      const decide = () => engine.decide({ deviceId: device.id, destination: { ip: "10.0.0.1" }, port: 443, protocol: "tcp" }).reason;
      expect(decide()).not.toBe("deny.revoked");
      // Right after a poll: the PEP's next idle poll (its head's refresh) is 4 s away, and B never polls the head here
      // (once a minute): learning the revocation well within that, only the channel can have told it.
      await polls.nextAnswer();
      const committed = Date.now();
      expect((await http(a.url, admin.token, "POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
      await expect.poll(decide, { timeout: byNoticeMs, interval: 20 }).toBe("deny.revoked");
      expect(Date.now() - committed).toBeLessThan(byNoticeMs);
      expect(polls.waits.filter((wait) => wait !== "" && wait !== "0")).toEqual([]);
    } finally {
      await sync.stop();
      trigger.close();
    }
  }, 60_000);
});
