/**
 * A PEP against the live control plane (HTTP on a real port): it pins the feed key, takes a
 * snapshot, learns changes as deltas over a feed stream (or long polls), enforces them through ext_authz,
 * reports flows, and resumes from its state file after a restart.
 */
import { createPublicKey } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readConfig } from "@simroot/pep/daemon/config";
import { startPep, type RunningPep } from "@simroot/pep/daemon/main";
import { PepEngine } from "@simroot/pep/engine";
import { PepState } from "@simroot/pep/state";
import { FeedSync } from "@simroot/pep/sync";
import { nodeGet } from "@simroot/pep/transport";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { createApp } from "@simroot/api";
import { bindingKey, revokedKey } from "@simroot/core/device/keys";
import { memorySigner } from "@simroot/core";
import { call, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { recordingFetch } from "./support/feed-polls.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
const running: RunningPep[] = [];
beforeAll(async () => {
  runtime = await startTestRuntime({ port: 0 });
});
afterAll(async () => {
  await Promise.all(running.map((pep) => pep.stop()));
  await runtime.stop();
});

type Tenant = Awaited<ReturnType<typeof tenantClient>>;

const imsi = "208011234567890";
const meterIp = "10.20.0.7";
const telemetry = {
  name: "Meters send telemetry",
  selector: { matchLabels: { fleet: "meters" } },
  destinations: [{ fqdn: "ingest.example.com", ports: [8883], protocol: "tcp" }],
  effect: "allow",
};

/** A PEP key, and the feed's public key written to a file (what an operator pins at setup). */
async function pepCredentials(tenant: Tenant) {
  const created = await tenant.call("POST", "/v1/keys", { name: "edge-1", role: "pep" });
  expect(created.status).toBe(201);
  const token: string = created.json.token;
  const keys = await call(runtime, token, "GET", "/v1/feed/keys");
  expect(keys.status).toBe(200);
  const folder = await mkdtemp(join(tmpdir(), "simroot-pep-e2e-"));
  const keyFile = join(folder, "feed.pem");
  await writeFile(keyFile, keys.json.keys[0].publicKeyPem);
  return { token, keyFile, folder, tenantId: tenant.tenant.id as string, publicKey: createPublicKey(keys.json.keys[0].publicKeyPem) };
}

async function startTestPep(
  credentials: Awaited<ReturnType<typeof pepCredentials>>,
  feed: "stream" | "long-poll" | "push" = "stream",
  fetch?: typeof globalThis.fetch,
) {
  const config = readConfig(
    [
      "--feed",
      feed,
      ...(feed === "push" ? ["--mqtt-url", runtime.feedMqttUrl!] : []),
      "--state",
      join(credentials.folder, "state.json"),
      "--public-key",
      credentials.keyFile,
      "--tenant",
      credentials.tenantId,
      "--port",
      "0",
      "--admin-port",
      "0",
      "--flow-interval",
      "3600",
    ],
    { SIMROOT_URL: runtime.url!, SIMROOT_PEP_KEY: credentials.token },
  )!;
  const pep = await startPep(config, fetch ? { fetch } : {});
  running.push(pep);
  return pep;
}

async function stopPep(pep: RunningPep) {
  running.splice(running.indexOf(pep), 1);
  await pep.stop();
}

/** An ext_authz check as Envoy sends it: the original host, the client in x-forwarded-for. */
function check(pep: RunningPep, clientIp: string, host = "ingest.example.com:8883") {
  const url = new URL(pep.authzUrl);
  return new Promise<{ status: number; reason: string | undefined }>((resolve, reject) => {
    const request = get(
      { host: url.hostname, port: url.port, path: "/v1/readings", setHost: false, headers: { host, "x-forwarded-for": clientIp } },
      (response) => {
        response.resume();
        resolve({ status: response.statusCode!, reason: response.headers["x-simroot-decision-reason"] as string | undefined });
      },
    );
    request.on("error", reject);
  });
}

/** Reports the device's attachment with its address in the APN, as an operator core would. */
async function attach(tenant: Tenant, ipv4: string) {
  const created = await tenant.call("POST", "/v1/sources", { name: "normalized", format: "simroot" });
  expect(created.status).toBe(201);
  const { source, credentials } = created.json;
  const body = JSON.stringify([
    {
      type: "sim.attached",
      dedupeKey: `attach-${ipv4}`,
      occurredAt: new Date().toISOString(),
      device: { imsi },
      sourceType: "sim.attached",
      data: { bearer: "cellular", apn: "iot.acme", ipv4 },
    },
  ]);
  const response = await runtime.app.request(source.ingestPath, {
    method: "POST",
    headers: standardWebhookHeaders(credentials.webhookSecret, body),
    body,
  });
  expect(response.status).toBeLessThan(300);
  await runtime.settled();
}

/** A feed sync of `state` with the PEP's key and pinned feed key, asking for no wait unless told. */
const syncOf = (
  credentials: { token: string; publicKey: ReturnType<typeof createPublicKey> },
  state: PepState,
  options: Partial<ConstructorParameters<typeof FeedSync>[0]> = {},
) => new FeedSync({ url: runtime.url!, apiKey: credentials.token, publicKeys: [credentials.publicKey], state, waitSeconds: 0, ...options });

/** A normalized session fact of the device with this IMSI, at `at` (epoch ms). */
const session = (imsiOf: string, type: "sim.attached" | "sim.detached", ipv4: string, at: number) => ({
  type,
  dedupeKey: `${type}-${imsiOf}-${ipv4}-${at}`,
  occurredAt: new Date(at).toISOString(),
  device: { imsi: imsiOf },
  sourceType: type,
  data: type === "sim.attached" ? { bearer: "cellular", apn: "iot.acme", ipv4 } : { bearer: "cellular" },
});

describe("a PEP on the live feed", () => {
  it("syncs a snapshot, follows deltas, and denies a revoked device within a second", async () => {
    const tenant = await tenantClient(runtime);
    const device = (await tenant.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" } })).json;
    const credentials = await pepCredentials(tenant);
    const pep = await startTestPep(credentials);

    // The snapshot: the device registered before the PEP started, of the tenant it is bound to.
    await expect.poll(() => pep.engine.fresh(), { timeout: 5_000 }).toBe(true);
    expect(pep.state.tenantId).toBe(tenant.tenant.id);
    expect(pep.state.devices.get(device.id)).toMatchObject({ state: "active", labels: { fleet: "meters" } });
    expect(pep.sync.stats.snapshots).toBe(1);
    expect(
      pep.engine.decide({ deviceId: device.id, destination: { fqdn: "ingest.example.com" }, port: 8883, protocol: "tcp" }),
    ).toMatchObject({ allow: false, reason: "deny.default" });

    // Deltas: a policy, then the device's address in the APN.
    const versionBefore = pep.state.version;
    const policy = await tenant.call("POST", "/v1/policies", telemetry);
    expect(policy.status).toBe(201);
    await expect.poll(() => pep.state.policies.size, { timeout: 3_000 }).toBe(1);
    expect(pep.state.version).toBeGreaterThan(versionBefore);
    expect(
      pep.engine.decide({ deviceId: device.id, destination: { fqdn: "ingest.example.com" }, port: 8883, protocol: "tcp" }),
    ).toMatchObject({ allow: true, reason: "allow.rule", ruleId: policy.json.id });
    await attach(tenant, meterIp);
    await expect.poll(() => pep.state.binding(meterIp)?.deviceId, { timeout: 3_000 }).toBe(device.id);
    expect(await check(pep, meterIp)).toEqual({ status: 200, reason: "allow.rule" });
    expect(await check(pep, "10.20.0.99")).toEqual({ status: 403, reason: "deny.unknown-device" });
    expect(pep.sync.stats.snapshots).toBe(1);

    // Revocation reaches the edge through the feed stream the daemon holds.
    const revokedAt = Date.now();
    const revoked = await tenant.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "SIM reported stolen" });
    expect(revoked.status).toBe(200);
    await expect
      .poll(
        () => pep.engine.decide({ deviceId: device.id, destination: { fqdn: "ingest.example.com" }, port: 8883, protocol: "tcp" }).reason,
        { timeout: 1_000, interval: 10 },
      )
      .toBe("deny.revoked");
    expect(Date.now() - revokedAt).toBeLessThan(1_000);
    // Revocation also released the device's address: its traffic is denied either way.
    expect(pep.state.binding(meterIp)).toBeUndefined();
    expect(await check(pep, meterIp)).toEqual({ status: 403, reason: "deny.unknown-device" });

    // The flows decided so far reach the control plane.
    await pep.flows!.flush();
    expect(pep.flows!.stats).toMatchObject({ reports: 1, failedPosts: 0, droppedReports: 0 });
    expect(pep.flows!.stats.flows).toBeGreaterThanOrEqual(3);

    // Restarted from its state file, it resumes from its version: no snapshot, deltas only.
    const version = pep.state.version;
    await stopPep(pep);
    const restarted = await startTestPep(credentials);
    expect(restarted.state.version).toBe(version);
    expect(
      restarted.engine.decide({ deviceId: device.id, destination: { fqdn: "ingest.example.com" }, port: 8883, protocol: "tcp" }).reason,
    ).toBe("deny.revoked");
    await tenant.call("POST", "/v1/policies", {
      ...telemetry,
      name: "Meters reach updates",
      destinations: [{ fqdn: "updates.example.com", protocol: "tcp" }],
    });
    await expect.poll(() => restarted.state.policies.size, { timeout: 3_000 }).toBe(2);
    expect(restarted.sync.stats.snapshots).toBe(0);
    await stopPep(restarted);
  });

  it("on the push channel (--feed push): holds no request open, denies a revoked device within a second, stays fresh when idle", async () => {
    const tenant = await tenantClient(runtime, "push");
    const device = (await tenant.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" } })).json;
    const credentials = await pepCredentials(tenant);
    const polls = recordingFetch();
    const pep = await startTestPep(credentials, "push", polls.fetch);
    await expect.poll(() => pep.engine.fresh(), { timeout: 5_000 }).toBe(true);
    const decide = () =>
      pep.engine.decide({ deviceId: device.id, destination: { fqdn: "ingest.example.com" }, port: 8883, protocol: "tcp" }).reason;
    expect(decide()).toBe("deny.default");
    // Right after a poll, the next idle one (the head's refresh) is 4 s away: within a second, the notice told it.
    await polls.nextAnswer();
    const revokedAt = Date.now();
    expect((await tenant.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "SIM reported stolen" })).status).toBe(200);
    await expect.poll(decide, { timeout: 1_000, interval: 10 }).toBe("deny.revoked");
    expect(Date.now() - revokedAt).toBeLessThan(1_000);
    // Never a long poll or a stream: every delta request answers at once.
    expect(polls.waits.length).toBeGreaterThan(1);
    expect(polls.waits.filter((wait) => wait !== "" && wait !== "0")).toEqual([]);

    // Idle, with no notice to wake it: it refreshes the signed head before it expires (8 s), so it never fails closed.
    const idleSince = Date.now();
    const stale: number[] = [];
    while (Date.now() - idleSince < 11_000) {
      if (!pep.engine.fresh()) stale.push(Date.now() - idleSince);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(stale).toEqual([]);
    await stopPep(pep);
  });

  it("follows a streamed feed on one connection: each change and re-signed head arrives without a new request", async () => {
    const tenant = await tenantClient(runtime);
    const device = (await tenant.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" } })).json;
    const credentials = await pepCredentials(tenant);
    const state = new PepState(tenant.tenant.id);
    const get = nodeGet();
    const requests: string[] = [];
    const sync = new FeedSync({
      url: runtime.url!,
      apiKey: credentials.token,
      publicKeys: [credentials.publicKey],
      state,
      stream: true,
      transport: (request) => {
        requests.push(request.url);
        return get(request);
      },
    });
    sync.start();
    try {
      await expect.poll(() => state.devices.get(device.id)?.state, { timeout: 5_000 }).toBe("active");
      await expect.poll(() => requests.length).toBe(2);
      const revokedAt = Date.now();
      expect((await tenant.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
      await expect.poll(() => state.devices.get(device.id)?.state, { timeout: 1_000, interval: 10 }).toBe("revoked");
      expect(Date.now() - revokedAt).toBeLessThan(1_000);
      expect((await tenant.call("POST", "/v1/policies", telemetry)).status).toBe(201);
      await expect.poll(() => state.policies.size, { timeout: 1_000 }).toBe(1);
      // Idle, the stream carries a re-signed head every half head lifetime: the PEP stays fresh.
      const freshUntil = state.freshUntil;
      await expect.poll(() => state.freshUntil, { timeout: 6_000, interval: 100 }).toBeGreaterThan(freshUntil);
      expect(requests).toHaveLength(2);
      expect(requests[1]).toMatch(/since=\d+&wait=20/);
      expect(sync.stats).toMatchObject({ errors: 0, rejected: {} });
    } finally {
      await sync.stop();
    }
  });

  it("asks to stream and is answered a long poll by a control plane that cannot stream (the API Lambda behind API Gateway)", async () => {
    const tenant = await tenantClient(runtime);
    const credentials = await pepCredentials(tenant);
    const signer = memorySigner();
    const lambdaShaped = createApp({ ports: () => runtime.ports, feedSigner: async () => signer, health: {} });
    const state = new PepState(tenant.tenant.id);
    const sync = new FeedSync({
      url: "https://api.simroot.example",
      apiKey: credentials.token,
      publicKeys: [createPublicKey(signer.publicKeyPem)],
      state,
      stream: true,
      waitSeconds: 1,
      fetch: async (input, init) => lambdaShaped.request(String(input), init),
    });
    expect(await sync.step()).toBe("snapshot");
    const polled = await lambdaShaped.request(`/v1/feed?since=${state.version}&wait=0`, {
      headers: { authorization: `Bearer ${credentials.token}`, accept: "text/event-stream" },
    });
    expect(polled.headers.get("content-type")).toMatch(/^application\/json/);
    expect(await sync.step()).toBe("idle");
    expect((await tenant.call("POST", "/v1/policies", telemetry)).status).toBe(201);
    expect(await sync.step()).toBe("delta");
    expect(state.policies.size).toBe(1);
  });

  it("keeps a revoked device out of the break-glass destinations by its last address, learned from a snapshot taken after the revocation (review 60)", async () => {
    // A PEP that was behind at the revocation (or lost its state file) catches up by a snapshot, which lists no released
    // binding: it learned the revoked device's address only from a delta's release, and once its feed went stale the
    // revoked device reached the break-glass destinations by that address again.
    const tenant = await tenantClient(runtime);
    const device = (await tenant.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" } })).json;
    await attach(tenant, meterIp);
    expect((await tenant.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "SIM reported stolen" })).status).toBe(200);
    await runtime.settled();

    const credentials = await pepCredentials(tenant);
    const state = new PepState(tenant.tenant.id);
    const sync = syncOf(credentials, state);
    expect(await sync.step()).toBe("snapshot");
    expect(state.devices.get(device.id)?.state).toBe("revoked");
    expect(state.binding(meterIp)).toBeUndefined();
    const stale = new PepEngine(state, { breakGlass: ["sos.example.com"], now: () => state.freshUntil + 60_000 });
    const sos = { sourceIp: meterIp, destination: { fqdn: "sos.example.com" }, port: 443, protocol: "tcp" } as const;
    expect(stale.decide(sos)).toMatchObject({ allow: false, reason: "deny.revoked", deviceId: device.id });
    // Kept across a restart (the state file), and not taken for another address.
    const restored = new PepEngine(PepState.fromJSON(JSON.parse(JSON.stringify(state.toJSON()))), {
      breakGlass: ["sos.example.com"],
      now: () => state.freshUntil + 60_000,
    });
    expect(restored.decide(sos)).toMatchObject({ allow: false, reason: "deny.revoked" });
    expect(restored.decide({ ...sos, sourceIp: "10.20.0.99" })).toMatchObject({ allow: true, reason: "allow.break-glass" });
  });

  it("learns a revoked device's last address from a snapshot's revocations page, before the snapshot completes (review 61)", async () => {
    // The control plane goes away once the page carrying the revocation arrived: the PEP enforced the revocation by id at
    // once, but not by the address the very same entry names, and the revoked device reached break-glass by it.
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const address = "10.33.0.7";
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011200000001" })).json;
    for (let index = 2; index <= 6; index++) await tenant.call("POST", "/v1/devices", { imsi: `20801120000000${index}` });
    await report(session("208011200000001", "sim.attached", address, Date.now() - 60_000));
    expect((await tenant.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    await runtime.settled();
    const credentials = await pepCredentials(tenant);
    let unreachable = false;
    const flaky: typeof fetch = async (input, init) => {
      if (unreachable) throw new Error("connect ECONNREFUSED");
      const response = await fetch(input, init);
      const body = (await response.clone().json()) as { entries?: { kind: string; value: { state?: string } | null }[] };
      if (body.entries?.some((entry) => entry.kind === "device" && entry.value?.state === "revoked")) unreachable = true;
      return response;
    };
    const statePath = join(credentials.folder, "interrupted.json");
    const state = new PepState(tenant.tenant.id);
    const sync = syncOf(credentials, state, { fetch: flaky, limit: 3, statePath });
    await expect(sync.snapshot()).rejects.toThrow();
    const sos = { sourceIp: address, destination: { fqdn: "sos.example.com" }, port: 443, protocol: "tcp" } as const;
    for (const view of [state, PepState.fromJSON(JSON.parse(await readFile(statePath, "utf8")))]) {
      expect(view.devices.get(device.id)?.state).toBe("revoked");
      expect(new PepEngine(view, { breakGlass: ["sos.example.com"] }).decide(sos)).toMatchObject({ allow: false, reason: "deny.revoked" });
    }
  });

  it("agrees with the deltas on a revoked device's address that another device took and gave up since: nobody's (review 61)", async () => {
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const credentials = await pepCredentials(tenant);
    const [address, kept] = ["10.31.0.7", "10.31.0.8"];
    const revoked = (await tenant.call("POST", "/v1/devices", { imsi: "208011100000001" })).json;
    await tenant.call("POST", "/v1/devices", { imsi: "208011100000002" });
    const follower = new PepState(tenant.tenant.id);
    const followerSync = syncOf(credentials, follower);
    const catchUp = async () => {
      for (let round = 0; round < 20; round++) if ((await followerSync.step()) === "idle") return;
    };
    await catchUp();
    const at = Date.now() - 120_000;
    // Dual-stack: both of the cellular session's addresses go to the other device in one commit.
    const dualStack = (fact: ReturnType<typeof session>) => ({ ...fact, data: { ...fact.data, ipv6: "2001:db8::31" } });
    await report(dualStack(session("208011100000001", "sim.attached", address, at)), {
      ...session("208011100000001", "sim.attached", kept, at + 1),
      data: { bearer: "wifi", ipv4: kept },
    });
    await catchUp();
    expect((await tenant.call("POST", `/v1/devices/${revoked.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    await runtime.settled();
    await catchUp();
    // One of its addresses goes to another device, which gives it up again.
    await report(dualStack(session("208011100000002", "sim.attached", address, at + 2)));
    await catchUp();
    await report(session("208011100000002", "sim.detached", address, at + 3));
    await catchUp();
    // The revocation marker a snapshot lists (past the replay of the last seconds' versions) names only the address kept.
    const marker = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.identity, Key: revokedKey(tenant.tenant.id, revoked.id), ConsistentRead: true }),
    );
    expect(Object.keys(marker.Item?.view.lastAddresses ?? {})).toEqual([kept]);
    // The address still the revoked device's keeps its release tombstone, naming it, for as long: it is what the bind of
    // the address to another device clears the marker by (review 63: its expiry left the marker naming it for good).
    const tombstone = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.identity, Key: bindingKey(tenant.tenant.id, kept), ConsistentRead: true }),
    );
    expect(tombstone.Item).toMatchObject({ revokedDevice: revoked.id });
    expect(tombstone.Item?.expiresAt).toBeUndefined();
    const snapshot = new PepState(tenant.tenant.id);
    const snapshotSync = syncOf(credentials, snapshot);
    expect(await snapshotSync.step()).toBe("snapshot");
    const stale = (state: PepState) => new PepEngine(state, { breakGlass: ["sos.example.com"], now: () => state.freshUntil + 60_000 });
    const sos = { destination: { fqdn: "sos.example.com" }, port: 443, protocol: "tcp" } as const;
    for (const state of [follower, snapshot]) {
      expect(stale(state).decide({ ...sos, sourceIp: address })).toMatchObject({ allow: true, reason: "allow.break-glass" });
      expect(stale(state).decide({ ...sos, sourceIp: "2001:db8::31" })).toMatchObject({ allow: true, reason: "allow.break-glass" });
      expect(stale(state).decide({ ...sos, sourceIp: kept })).toMatchObject({ allow: false, reason: "deny.revoked" });
    }
  });

  it("keeps an idle PEP fresh with 304s, and refuses to roll back when the control plane is behind it", async () => {
    const tenant = await tenantClient(runtime);
    const credentials = await pepCredentials(tenant);
    const state = new PepState(tenant.tenant.id);
    const sync = new FeedSync({ url: runtime.url!, apiKey: credentials.token, publicKeys: [credentials.publicKey], state, waitSeconds: 1 });
    expect(await sync.step()).toBe("snapshot");
    const version = state.version;
    const freshUntil = state.freshUntil;
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await sync.step()).toBe("idle");
    expect(state.version).toBe(version);
    expect(state.freshUntil).toBeGreaterThan(freshUntil);

    // A PEP ahead of the control plane (restored from an old backup, say) is told to take a
    // snapshot (410), and refuses it as a rollback: it stays on what it has and fails closed in time.
    const ahead = new PepState(tenant.tenant.id);
    ahead.version = version + 1000;
    const aheadSync = new FeedSync({
      url: runtime.url!,
      apiKey: credentials.token,
      publicKeys: [credentials.publicKey],
      state: ahead,
      waitSeconds: 0,
    });
    await expect(aheadSync.step()).rejects.toMatchObject({ code: "feed.rollback" });
    expect(ahead.version).toBe(version + 1000);
  });

  it("after a restore (the control plane behind the PEP), takes the restored state only once an admin advanced the feed epoch", async () => {
    const tenant = await tenantClient(runtime);
    const credentials = await pepCredentials(tenant);
    const device = (await tenant.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" } })).json;
    const genuine = await call(runtime, credentials.token, "GET", "/v1/feed");
    expect(genuine.json.signed.head.epoch).toBe(0);
    // The PEP saw versions the restored control plane no longer has.
    const ahead = new PepState(tenant.tenant.id);
    ahead.version = genuine.json.signed.head.version + 1000;
    const sync = new FeedSync({
      url: runtime.url!,
      apiKey: credentials.token,
      publicKeys: [credentials.publicKey],
      state: ahead,
      waitSeconds: 0,
    });
    await expect(sync.step()).rejects.toMatchObject({ code: "feed.rollback" });

    // Only an admin advances the epoch.
    expect((await call(runtime, credentials.token, "POST", "/v1/feed/epoch", { reason: "restored from backup" })).status).toBe(403);
    const advanced = await tenant.call("POST", "/v1/feed/epoch", { reason: "restored from backup" });
    expect(advanced.status).toBe(200);
    expect(advanced.json.epoch).toBeGreaterThan(0);
    // The signed heads carry it within a second (each control-plane instance reads it at most every second).
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await sync.step()).toBe("snapshot");
    expect(ahead).toMatchObject({ epoch: advanced.json.epoch });
    expect(ahead.version).toBeLessThan(genuine.json.signed.head.version + 1000);
    expect(ahead.devices.get(device.id)?.state).toBe("active");
    // A genuine response of the epoch before, replayed, is refused: the way back is one-way.
    const replayed = new FeedSync({
      url: runtime.url!,
      apiKey: credentials.token,
      publicKeys: [credentials.publicKey],
      state: ahead,
      fetch: (async () => Response.json(genuine.json)) as unknown as typeof fetch,
    });
    await expect(replayed.snapshot()).rejects.toMatchObject({ code: "feed.rollback" });
    // The advance is audited.
    const audit = await tenant.call("GET", "/v1/audit?limit=1000");
    // Tenant-level changes are on ledger shard 0, listed first, in order: the advance is its last record.
    expect(audit.json.items.filter((item: { shard: number }) => item.shard === 0).at(-1)).toMatchObject({
      action: "feed.epoch-advanced",
      data: { epoch: advanced.json.epoch, previous: 0, reason: "restored from backup" },
    });
  });

  it("is refused the feed without a pep key, and refuses a feed signed by a key it did not pin", async () => {
    const tenant = await tenantClient(runtime);
    const credentials = await pepCredentials(tenant);
    const anonymous = new FeedSync({
      url: runtime.url!,
      apiKey: "not-a-key",
      publicKeys: [credentials.publicKey],
      state: new PepState(tenant.tenant.id),
    });
    await expect(anonymous.step()).rejects.toMatchObject({ name: "FeedHttpError", status: 401 });
    const { generateKeyPairSync } = await import("node:crypto");
    const wrongPin = new FeedSync({
      url: runtime.url!,
      apiKey: credentials.token,
      publicKeys: [generateKeyPairSync("ed25519").publicKey],
      state: new PepState(tenant.tenant.id),
    });
    await expect(wrongPin.step()).rejects.toMatchObject({ code: "feed.bad_signature" });
  });
});
