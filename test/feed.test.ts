import { verify } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contentHash, headBytes, recordFlows, type FeedResponse, type SignedHead } from "@simroot/core";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

async function setup() {
  const admin = await tenantClient(runtime);
  const pep = (await admin.call("POST", "/v1/keys", { name: "edge-1", role: "pep" })).json.token as string;
  const { keys } = (await call(runtime, pep, "GET", "/v1/feed/keys")).json as { keys: { publicKeyPem: string }[] };
  const publicKey = keys[0]!.publicKeyPem;
  const authentic = (signed: SignedHead, entries: FeedResponse["entries"]) =>
    verify(null, headBytes(signed.head), publicKey, Buffer.from(signed.signature, "base64")) &&
    contentHash(entries) === signed.head.contentHash;
  const feed = (query: string, headers: Record<string, string> = {}) => call(runtime, pep, "GET", `/v1/feed${query}`, undefined, headers);
  return { admin, pep, authentic, feed };
}

describe("the signed policy feed", () => {
  it("serves a signed snapshot page by page, then signed deltas from its version", async () => {
    const { admin, authentic, feed } = await setup();
    const devices = [];
    for (const imsi of ["208010000000001", "208010000000002", "208010000000003"])
      devices.push((await admin.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" } })).json);
    const { source, credentials } = (await admin.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    const body = JSON.stringify([
      {
        type: "sim.attached",
        dedupeKey: "a1",
        occurredAt: new Date().toISOString(),
        device: { imsi: "208010000000001" },
        sourceType: "t",
        data: { bearer: "cellular", ipv4: "10.7.0.1" },
      },
    ]);
    await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: standardWebhookHeaders(credentials.webhookSecret, body),
      body,
    });
    await runtime.settled();

    const pages: FeedResponse[] = [];
    let next: string | undefined;
    do {
      const page = await feed(`?limit=2${next ? `&cursor=${next}` : ""}`);
      expect(page.status).toBe(200);
      pages.push(page.json);
      next = page.json.next;
    } while (next);
    expect(pages.length).toBeGreaterThan(1);
    for (const [index, page] of pages.entries()) {
      expect(authentic(page.signed, page.entries)).toBe(true);
      expect(page.signed.head).toMatchObject({ kind: "snapshot", page: index, last: index === pages.length - 1 });
      const { issuedAt, expiresAt } = page.signed.head;
      expect(Date.parse(expiresAt) - Date.parse(issuedAt)).toBeLessThanOrEqual(120_000);
    }
    const snapshot = pages.flatMap((page) => page.entries);
    const version = pages[0]!.signed.head.version;
    // A device may be listed twice: by the index and by the replay of the latest versions (which the index may not show yet).
    expect([...new Set(snapshot.filter((entry) => entry.kind === "device").map((entry) => entry.key))].sort()).toEqual(
      devices.map((d) => d.id).sort(),
    );
    expect(snapshot.find((entry) => entry.kind === "binding")).toMatchObject({
      key: "10.7.0.1",
      value: { deviceId: devices[0].id, bearer: "cellular" },
    });
    expect(
      snapshot
        .filter((entry) => entry.kind === "settings")
        .map((entry) => entry.key)
        .sort(),
    ).toEqual(["enforcement", "tenant"]);

    await admin.call("POST", `/v1/devices/${devices[1].id}/revoke`, { reason: "stolen" });
    const delta = await feed(`?since=${version}`);
    expect(delta.status).toBe(200);
    expect(authentic(delta.json.signed, delta.json.entries)).toBe(true);
    expect(delta.json.signed.head).toMatchObject({ kind: "delta", since: version, last: true });
    expect(delta.json.entries).toEqual([
      expect.objectContaining({ kind: "device", key: devices[1].id, value: expect.objectContaining({ state: "revoked" }) }),
    ]);
    // A delta is about the change, not the fleet.
    expect(JSON.stringify(delta.json).length).toBeLessThan(1024);
  });

  it("lists revoked devices first in a snapshot, before the rest of the fleet", async () => {
    const { admin, feed } = await setup();
    const devices = [];
    for (const imsi of ["208010000000011", "208010000000012", "208010000000013", "208010000000014"])
      devices.push((await admin.call("POST", "/v1/devices", { imsi })).json);
    for (const device of devices.slice(2)) await admin.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" });

    const first = await feed("?limit=4");
    const order = (first.json as FeedResponse).entries
      .filter((entry) => entry.kind === "device")
      .map((entry) => [entry.key, entry.value?.state]);
    // In no particular order among themselves (the listing is striped: device/keys.ts).
    expect(order.slice(0, 2).sort()).toEqual(
      [
        [devices[2].id, "revoked"],
        [devices[3].id, "revoked"],
      ].sort(),
    );
    // The fleet follows in full, the revoked devices included.
    const entries: FeedResponse["entries"] = [];
    let next: string | undefined;
    do {
      const page = await feed(`?limit=4${next ? `&cursor=${next}` : ""}`);
      entries.push(...page.json.entries);
      next = page.json.next;
    } while (next);
    expect(new Set(entries.filter((entry) => entry.kind === "device").map((entry) => entry.key))).toEqual(
      new Set(devices.map((device) => device.id)),
    );
  });

  it("answers a long poll as soon as a change lands, and an idle poll with 304 and a fresh signed head", async () => {
    const { admin, authentic, feed } = await setup();
    const device = (await admin.call("POST", "/v1/devices", { imsi: "208010000000009" })).json;
    const snapshot = await feed("");
    const version = snapshot.json.signed.head.version;
    // Every 200 and 304 carries the version it reaches as its ETag, a snapshot page too (as /openapi.json lists it).
    expect(snapshot.headers.get("etag")).toBe(`"${version}"`);

    const idle = await feed(`?since=${version}&wait=1`, { "if-none-match": `"${version}"` });
    expect(idle.status).toBe(304);
    const signed = JSON.parse(Buffer.from(idle.headers.get("simroot-feed-head")!, "base64").toString()) as SignedHead;
    expect(authentic(signed, [])).toBe(true);
    expect(signed.head).toMatchObject({ since: version, version });

    const started = Date.now();
    const polling = feed(`?since=${version}&wait=20`, { "if-none-match": `"${version}"` });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await admin.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "anomaly" });
    const answer = await polling;
    expect(answer.status).toBe(200);
    expect(answer.headers.get("etag")).toBe(`"${answer.json.signed.head.version}"`);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(answer.json.entries[0]).toMatchObject({ kind: "device", value: { state: "quarantined" } });
  });

  it("asks for a snapshot when a version is ahead of the control plane, and keeps the feed to PEP and admin keys", async () => {
    const { admin, feed } = await setup();
    const ahead = await feed("?since=999999");
    expect(ahead.status).toBe(410);
    expect(ahead.json.type).toBe("urn:simroot:problem:feed.snapshot_required");
    const viewer = (await admin.call("POST", "/v1/keys", { name: "dash", role: "viewer" })).json.token;
    expect((await call(runtime, viewer, "GET", "/v1/feed")).status).toBe(403);
  });

  it("stores flow reports from PEPs and refuses malformed ones", async () => {
    const { admin, pep } = await setup();
    const device = (await admin.call("POST", "/v1/devices", { imsi: "208010000000030" })).json.id as string;
    const report = {
      pepId: "edge-1",
      windowStart: new Date(Date.now() - 10_000).toISOString(),
      windowEnd: new Date().toISOString(),
      flows: [
        {
          deviceId: device,
          destination: "broker.example",
          port: 8883,
          protocol: "tcp",
          decision: "allow",
          reason: "allow.rule",
          count: 12,
          bytes: 4096,
        },
      ],
    };
    expect((await call(runtime, pep, "POST", "/v1/flows", report)).json).toMatchObject({ flows: 1 });
    const bad = await call(runtime, pep, "POST", "/v1/flows", { ...report, flows: [{ ...report.flows[0], port: 70000 }] });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].path).toBe("flows.0.port");
  });

  it("keeps no flow of a device the tenant does not have, and names those it left out", async () => {
    const { admin, pep } = await setup();
    const own = (await admin.call("POST", "/v1/devices", { imsi: "208010000000031" })).json.id as string;
    const other = await tenantClient(runtime);
    const theirs = (await other.call("POST", "/v1/devices", { imsi: "208010000000032" })).json.id as string;
    const windowEnd = new Date();
    const flow = (deviceId: string, destination: string) => ({
      deviceId,
      destination,
      port: 443,
      protocol: "tcp" as const,
      decision: "allow" as const,
      reason: "allow.rule",
      count: 1,
      bytes: 100,
    });
    const answer = await call(runtime, pep, "POST", "/v1/flows", {
      pepId: "edge-1",
      windowStart: new Date(windowEnd.getTime() - 60_000).toISOString(),
      windowEnd: windowEnd.toISOString(),
      flows: [flow(own, "own.example"), flow(theirs, "theirs.example"), flow("dev_made_up", "made-up.example")],
    });
    expect(answer.status).toBe(202);
    expect(answer.json).toMatchObject({ flows: 1, unknownDevices: [theirs, "dev_made_up"].sort() });
    const { edges } = (await admin.call("GET", "/v1/traffic?hours=1")).json as { edges: { destination: string; devices: string[] }[] };
    expect(edges.map((edge) => edge.destination)).toEqual(["own.example"]);
    expect(edges.flatMap((edge) => edge.devices)).toEqual([own]);
    // The next window's report reads no device this instance found already (a device is never deleted), nor one it did
    // not find a moment ago, and reads (and leaves out) a new one.
    const read: string[] = [];
    const db = new Proxy(runtime.ports.db, {
      get: (target, name, receiver) =>
        name === "send"
          ? (command: { input: { RequestItems?: Record<string, { Keys: { pk: string }[] }> } }) => {
              for (const keys of Object.values(command.input.RequestItems ?? {})) read.push(...keys.Keys.map((key) => key.pk));
              return target.send(command as never);
            }
          : Reflect.get(target, name, receiver),
    });
    const ctx = { tenantId: admin.tenant.id, actor: "pep:edge-1", requestId: "req_flows_again" };
    const again = await recordFlows({ ...runtime.ports, db }, ctx, {
      pepId: "edge-1",
      windowStart: windowEnd.toISOString(),
      windowEnd: new Date(windowEnd.getTime() + 60_000).toISOString(),
      flows: [flow(own, "own.example"), flow("dev_made_up", "made-up.example"), flow("dev_made_up_2", "made-up.example")],
    });
    expect([again.flows, again.unknownDevices]).toEqual([1, ["dev_made_up", "dev_made_up_2"]]);
    expect(read.filter((pk) => pk.includes(own))).toEqual([]);
    expect(read.filter((pk) => pk.endsWith("#dev_made_up"))).toEqual([]);
    expect(read.filter((pk) => pk.endsWith("#dev_made_up_2"))).toHaveLength(1);
    // An id not found is not read again for a while either (review 59: every report re-read up to 1,000 of them).
    await recordFlows({ ...runtime.ports, db }, ctx, {
      pepId: "edge-1",
      windowStart: windowEnd.toISOString(),
      windowEnd: new Date(windowEnd.getTime() + 120_000).toISOString(),
      flows: [flow("dev_made_up_2", "made-up.example")],
    });
    expect(read.filter((pk) => pk.endsWith("#dev_made_up_2"))).toHaveLength(1);
  });

  it("refuses a flow whose source is not an address, and a window ending in the future (review 57)", async () => {
    const { pep } = await setup();
    const flow = {
      destination: "x.example",
      port: 443,
      protocol: "tcp",
      decision: "deny",
      reason: "deny.unknown-device",
      count: 1,
      bytes: 1,
    };
    const report = (windowEnd: Date, sourceIp: string) => ({
      pepId: "edge-1",
      windowStart: new Date(windowEnd.getTime() - 60_000).toISOString(),
      windowEnd: windowEnd.toISOString(),
      flows: [{ ...flow, sourceIp }],
    });
    const now = new Date();
    const refused = async (body: unknown, path: string) => {
      const answer = await call(runtime, pep, "POST", "/v1/flows", body);
      expect([answer.status, answer.json.errors?.[0]?.path]).toEqual([400, path]);
    };
    await refused(report(now, "not-an-ip"), "flows.0.sourceIp");
    await refused(report(new Date(Date.UTC(2030, 0, 1)), "10.0.0.1"), "windowEnd");
    // An address in either family, or the PEP's own word for a source it could not read.
    for (const sourceIp of ["10.0.0.1", "2001:db8::1", "unknown"])
      expect((await call(runtime, pep, "POST", "/v1/flows", report(now, sourceIp))).status).toBe(202);
  });
});
