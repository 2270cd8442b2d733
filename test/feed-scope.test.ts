/**
 * The feed narrowed to a site (`selector`): a narrowed PEP ends with exactly the full view
 * restricted to its site, through attaches, label changes that move devices in and out,
 * revocations and changes elsewhere; its heads are signed for its selector.
 */
import { createPublicKey } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBaseline, type FeedResponse } from "@simroot/core";
import { PepState } from "@simroot/pep/state";
import { FeedSync } from "@simroot/pep/sync";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

type Tenant = Awaited<ReturnType<typeof tenantClient>>;

async function site(tenant: Tenant) {
  const pep = (await tenant.call("POST", "/v1/keys", { name: "edge", role: "pep" })).json.token as string;
  const publicKey = createPublicKey((await call(runtime, pep, "GET", "/v1/feed/keys")).json.keys[0].publicKeyPem);
  const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
  let n = 0;
  const attach = async (imsi: string, ipv4: string, at = new Date()) => {
    const body = JSON.stringify([
      {
        type: "sim.attached",
        dedupeKey: `a${n++}`,
        occurredAt: at.toISOString(),
        device: { imsi },
        sourceType: "t",
        data: { bearer: "cellular", ipv4 },
      },
    ]);
    expect(
      (
        await runtime.app.request(source.ingestPath, {
          method: "POST",
          headers: standardWebhookHeaders(credentials.webhookSecret, body),
          body,
        })
      ).status,
    ).toBe(202);
    await runtime.settled();
  };
  const register = async (imsi: string, labels: Record<string, string>) =>
    (await tenant.call("POST", "/v1/devices", { imsi, labels })).json as { id: string };
  const relabel = async (id: string, labels: Record<string, string>) => {
    const etag = (await tenant.call("GET", `/v1/devices/${id}`)).headers.get("etag")!;
    expect((await tenant.call("PATCH", `/v1/devices/${id}`, { labels }, { "if-match": etag })).status).toBe(200);
  };
  const follower = (selector?: string, apiKey = pep) => {
    const state = new PepState(tenant.tenant.id);
    const sync = new FeedSync({
      url: "http://control-plane.test",
      apiKey,
      publicKeys: [publicKey],
      state,
      waitSeconds: 0,
      limit: 2,
      ...(selector ? { selector } : {}),
      fetch: ((input: string, init?: RequestInit) => runtime.app.request(input, init)) as typeof fetch,
    });
    /** Polls until the view is at the tenant's head. */
    const catchUp = async () => {
      const head = ((await call(runtime, pep, "GET", "/v1/feed?limit=1")).json as FeedResponse).signed.head.version;
      for (let polls = 0; state.version < head && polls < 50; polls++) await sync.step();
      expect(state.version).toBe(head);
    };
    return { state, sync, catchUp };
  };
  return { pep, attach, register, relabel, follower };
}

/** The full view restricted to `site`, in the narrowed view's terms. */
function restricted(full: PepState, siteName: string) {
  const devices = [...full.devices.values()].filter((device) => device.labels.site === siteName);
  const ids = new Set(devices.map((device) => device.id));
  return {
    devices: devices.map((device) => [device.id, device.state, { ...device.labels }]).sort(),
    bindings: [...full.bindings.values()]
      .filter((binding) => ids.has(binding.deviceId))
      .map((binding) => [binding.address, binding.deviceId])
      .sort(),
  };
}
const viewOf = (state: PepState) => ({
  devices: [...state.devices.values()].map((device) => [device.id, device.state, { ...device.labels }]).sort(),
  bindings: [...state.bindings.values()].map((binding) => [binding.address, binding.deviceId]).sort(),
});

describe("the feed narrowed to a site or segment", () => {
  it("snapshots only the site's devices and their bindings, with the whole policy, signed for the selector", async () => {
    const tenant = await tenantClient(runtime, "sites");
    const { pep, attach, register } = await site(tenant);
    const north = await register("208010000000201", { site: "north", fleet: "meters" });
    const south = await register("208010000000202", { site: "south", fleet: "meters" });
    await register("208010000000203", { site: "north", fleet: "cameras" });
    await attach("208010000000201", "10.30.0.1");
    await attach("208010000000202", "10.30.0.2");

    const pages: FeedResponse[] = [];
    let cursor: string | undefined;
    do {
      const page = await call(
        runtime,
        pep,
        "GET",
        `/v1/feed?limit=2&selector=${encodeURIComponent("site=north")}${cursor ? `&cursor=${cursor}` : ""}`,
      );
      expect(page.status).toBe(200);
      pages.push(page.json);
      cursor = page.json.next;
    } while (cursor);
    // The snapshot ends with a replay of the latest versions (what the index may not list yet): the view keeps each key's last entry.
    const entries = [...new Map(pages.flatMap((page) => page.entries).map((entry) => [`${entry.kind}|${entry.key}`, entry])).values()];
    expect(pages.every((page) => page.signed.head.scope === "site=north")).toBe(true);
    expect(entries.filter((entry) => entry.kind === "device" && entry.value !== null).map((entry) => entry.value?.labels)).toEqual([
      expect.objectContaining({ site: "north" }),
      expect.objectContaining({ site: "north" }),
    ]);
    expect(
      entries.filter((entry) => entry.kind === "binding" && entry.value !== null).map((entry) => [entry.key, entry.value?.deviceId]),
    ).toEqual([["10.30.0.1", north.id]]);
    // The replay may tell it the south device is not in its scope (a removal, as deltas do), never what it is.
    expect(entries.some((entry) => entry.key === south.id && entry.value !== null)).toBe(false);
    expect(entries.filter((entry) => entry.kind === "settings")).toHaveLength(2);

    // A snapshot begun for one selector cannot be continued under another, and a bad selector is a 400 naming it.
    const first = await call(runtime, pep, "GET", `/v1/feed?limit=1&selector=site%3Dnorth`);
    const mixed = await call(runtime, pep, "GET", `/v1/feed?limit=1&selector=site%3Dsouth&cursor=${first.json.next}`);
    expect(mixed.status).toBe(400);
    const bad = await call(runtime, pep, "GET", "/v1/feed?selector=Site%3D");
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].path).toBe("selector");
  });

  it("keeps a narrowed PEP equal to the full view restricted to its site as devices attach, move in and out, and are revoked", async () => {
    const tenant = await tenantClient(runtime, "moves");
    const { attach, register, relabel, follower } = await site(tenant);
    const a = await register("208010000000301", { site: "north" });
    const b = await register("208010000000302", { site: "south" });
    const c = await register("208010000000303", { site: "north" });
    await attach("208010000000301", "10.31.0.1");
    await attach("208010000000302", "10.31.0.2");

    const narrowed = follower("site=north");
    const full = follower();
    await narrowed.sync.snapshot();
    await full.sync.snapshot();
    expect(viewOf(narrowed.state)).toEqual(restricted(full.state, "north"));

    await relabel(b.id, { site: "north" }); // moves in: its binding must come along
    await relabel(a.id, { site: "west" }); // moves out: it and its binding must go
    await narrowed.catchUp();
    await full.catchUp();
    expect(viewOf(narrowed.state)).toEqual(restricted(full.state, "north"));
    expect(narrowed.state.bindings.get("10.31.0.2")?.deviceId).toBe(b.id);
    expect(narrowed.state.devices.has(a.id)).toBe(false);
    expect(narrowed.state.bindings.has("10.31.0.1")).toBe(false);

    await tenant.call("POST", `/v1/devices/${c.id}/revoke`, { reason: "stolen" });
    await register("208010000000304", { site: "south" }); // elsewhere
    await attach("208010000000303", "10.31.0.3"); // a revoked device gets no binding
    await attach("208010000000302", "10.31.0.4"); // b's session moves to a new address
    await narrowed.catchUp();
    await full.catchUp();
    expect(viewOf(narrowed.state)).toEqual(restricted(full.state, "north"));
    expect(narrowed.state.bindings.get("10.31.0.4")?.deviceId).toBe(b.id);
    expect(narrowed.state.bindings.has("10.31.0.2")).toBe(false);
    expect(narrowed.state.devices.get(c.id)?.state).toBe("revoked");
    expect(narrowed.sync.stats.rejected).toEqual({});
  });

  it("keeps a revoked device's labels, so that the site it was revoked at keeps its released addresses (review 158)", async () => {
    // Relabelled after its revocation, a revoked device was served to the new site's PEPs as revoked but without the
    // addresses its revocation released (the revocation marker keeps the labels of the revocation): a stale PEP there let
    // the revoked SIM reach break-glass destinations from its last address, where a whole-tenant PEP denied it.
    const tenant = await tenantClient(runtime, "revoked-relabel");
    const { attach, register, relabel, follower } = await site(tenant);
    const stolen = await register("208010000000311", { site: "paris" });
    await attach("208010000000311", "10.31.1.1");
    expect((await tenant.call("POST", `/v1/devices/${stolen.id}/revoke`, { reason: "stolen" })).status).toBe(200);

    const read = await tenant.call("GET", `/v1/devices/${stolen.id}`);
    const moved = await tenant.call(
      "PATCH",
      `/v1/devices/${stolen.id}`,
      { labels: { site: "lyon" } },
      { "if-match": read.headers.get("etag")! },
    );
    expect([moved.status, moved.json.type]).toEqual([409, "urn:simroot:problem:device.revoked"]);
    // Nothing changed: same labels, same revision; its other attributes can still be changed.
    const after = await tenant.call("GET", `/v1/devices/${stolen.id}`);
    expect([after.json.labels, after.headers.get("etag")]).toEqual([{ site: "paris" }, read.headers.get("etag")]);
    const renamed = await tenant.call(
      "PATCH",
      `/v1/devices/${stolen.id}`,
      { name: "stolen meter" },
      { "if-match": read.headers.get("etag")! },
    );
    expect(renamed.status).toBe(200);

    // The site it was revoked at is told which address it held; the other site is told nothing of it.
    const paris = follower("site=paris");
    const lyon = follower("site=lyon");
    await paris.sync.snapshot();
    await lyon.sync.snapshot();
    expect(paris.state.devices.get(stolen.id)?.state).toBe("revoked");
    expect(paris.state.revokedHolder("10.31.1.1")).toBe(stolen.id);
    expect(lyon.state.devices.has(stolen.id)).toBe(false);
    // Relabelling a device that is not revoked still works.
    const other = await register("208010000000312", { site: "paris" });
    await relabel(other.id, { site: "lyon" });
  });

  it("follows a device of the site that changed many times between two polls (one narrowed delta, no duplicate reads)", async () => {
    const tenant = await tenantClient(runtime, "churn");
    const { attach, register, relabel, follower } = await site(tenant);
    const a = await register("208010000000401", { site: "north" });
    await attach("208010000000401", "10.32.0.1");
    const narrowed = follower("site=north");
    const full = follower();
    await narrowed.sync.snapshot();
    await full.sync.snapshot();
    // Before the fix, the narrowed delta asked BatchGetItem for the same keys twice: 500 on every poll from then on.
    for (let round = 0; round < 6; round++) await relabel(a.id, { site: "north", round: String(round) });
    await tenant.call("POST", `/v1/devices/${a.id}/suspend`, { reason: "maintenance" });
    await relabel(a.id, { site: "north", round: "last" });
    const pep = (await tenant.call("POST", "/v1/keys", { name: "probe", role: "pep" })).json.token as string;
    const since = narrowed.state.version;
    const delta = await call(runtime, pep, "GET", `/v1/feed?since=${since}&limit=100&selector=site%3Dnorth`);
    expect(delta.status).toBe(200);
    expect(delta.json.entries.filter((entry: { key: string }) => entry.key === a.id).length).toBeGreaterThanOrEqual(8);
    await narrowed.catchUp();
    await full.catchUp();
    expect(viewOf(narrowed.state)).toEqual(restricted(full.state, "north"));
    expect(narrowed.state.devices.get(a.id)).toMatchObject({ state: "suspended", labels: { site: "north", round: "last" } });
    expect(narrowed.state.bindings.get("10.32.0.1")?.deviceId).toBe(a.id);
  });
});

describe("a pep key bound to a selector (review 73)", () => {
  // Any pep key read the whole tenant's feed: a PEP deployed for one site, its key taken, gave away every site's devices.
  it("reads only its selector's view, or a narrower one, and is refused any other; an unbound key reads the whole feed", async () => {
    const tenant = await tenantClient(runtime, "bound-peps");
    const { pep: unbound, attach, register, relabel, follower } = await site(tenant);
    const north = await register("208010000000501", { site: "north", fleet: "meters" });
    const south = await register("208010000000502", { site: "south", fleet: "meters" });
    await attach("208010000000501", "10.33.0.1");
    await attach("208010000000502", "10.33.0.2");

    const created = await tenant.call("POST", "/v1/keys", { name: "north edge", role: "pep", selector: "site=north" });
    expect([created.status, created.json.key?.selector], created.text).toEqual([201, "site=north"]);
    const bound = created.json.token as string;
    const listed = (await tenant.call("GET", "/v1/keys")).json.items.find((key: { name: string }) => key.name === "north edge");
    expect(listed.selector).toBe("site=north");

    // Without a selector, the key's own view: the head names it; nothing of the south device but, at most, that it is not there.
    const snapshot = await call(runtime, bound, "GET", "/v1/feed?limit=1000");
    expect([snapshot.status, snapshot.json.signed.head.scope]).toEqual([200, "site=north"]);
    const entries = snapshot.json.entries as FeedResponse["entries"];
    expect(entries.filter((entry) => entry.kind === "device" && entry.value !== null).map((entry) => entry.key)).toEqual([north.id]);
    expect(entries.filter((entry) => entry.kind === "binding" && entry.value !== null).map((entry) => entry.key)).toEqual(["10.33.0.1"]);
    expect(entries.some((entry) => entry.key === south.id && entry.value !== null)).toBe(false);
    expect(snapshot.text).not.toContain("208010000000502");
    // (The snapshot's replay of the latest versions may name the south address as a removal, as a delta does.)
    expect(entries.some((entry) => entry.key === "10.33.0.2" && entry.value !== null)).toBe(false);

    // Another site, a broader selector, a different one sharing a label: 403, on snapshots, deltas and the stream alike.
    const version = snapshot.json.signed.head.version as number;
    for (const path of [
      "/v1/feed?selector=site%3Dsouth",
      "/v1/feed?selector=fleet%3Dmeters",
      `/v1/feed?since=${version}&selector=site%3Dsouth`,
      `/v1/feed?since=${version}&wait=1&selector=fleet%3Dmeters`,
    ]) {
      const refused = await call(runtime, bound, "GET", path);
      expect([path, refused.status, refused.headers.get("content-type"), refused.json.type]).toEqual([
        path,
        403,
        "application/problem+json",
        "urn:simroot:problem:feed.selector_not_bound",
      ]);
    }
    const streamed = await call(runtime, bound, "GET", `/v1/feed?since=${version}&wait=1&selector=site%3Dsouth`, undefined, {
      accept: "text/event-stream",
    });
    expect([streamed.status, streamed.headers.get("content-type")]).toEqual([403, "application/problem+json"]);
    // Its own selector, or a narrower one, is served.
    expect((await call(runtime, bound, "GET", "/v1/feed?selector=site%3Dnorth")).json.signed.head.scope).toBe("site=north");
    const narrower = await call(runtime, bound, "GET", `/v1/feed?selector=${encodeURIComponent("fleet=meters,site=north")}`);
    expect([narrower.status, narrower.json.signed.head.scope]).toEqual([200, "fleet=meters,site=north"]);

    // A change of the south device reaches it as a removal at most, never as what the device is.
    await relabel(south.id, { site: "south", fleet: "pumps" });
    const delta = await call(runtime, bound, "GET", `/v1/feed?since=${version}&limit=100`);
    expect([delta.status, delta.json.signed.head.scope]).toEqual([200, "site=north"]);
    expect((delta.json.entries as FeedResponse["entries"]).some((entry) => entry.key === south.id && entry.value !== null)).toBe(false);
    expect(delta.text).not.toContain("pumps");

    // A PEP configured with the key's selector follows it as any narrowed PEP does.
    const pep = follower("site=north", bound);
    await pep.sync.snapshot();
    await pep.catchUp();
    expect(viewOf(pep.state)).toEqual({
      devices: [[north.id, "active", { site: "north", fleet: "meters" }]],
      bindings: [["10.33.0.1", north.id]],
    });

    // Rotation keeps the binding.
    const rotated = await tenant.call("POST", `/v1/keys/${created.json.key.keyId}/rotate`);
    expect(rotated.json.key.selector).toBe("site=north");
    expect((await call(runtime, rotated.json.token, "GET", "/v1/feed?selector=site%3Dsouth")).status).toBe(403);
    expect((await call(runtime, rotated.json.token, "GET", "/v1/feed")).json.signed.head.scope).toBe("site=north");

    // An unbound pep key reads as before: the whole feed, or any selector.
    const whole = await call(runtime, unbound, "GET", "/v1/feed?limit=1000");
    expect(whole.json.signed.head.scope).toBeUndefined();
    expect(
      whole.json.entries.filter((entry: { kind: string; value: unknown }) => entry.kind === "device" && entry.value !== null),
    ).toHaveLength(2);
    expect((await call(runtime, unbound, "GET", "/v1/feed?selector=site%3Dsouth")).status).toBe(200);
  });

  it("is not told of the devices that never were in its scope: their changes are not named, not even as removals", async () => {
    // A bound key's deltas named, as removals, every device of the tenant that changed (attaches, suspensions, relabels
    // elsewhere, new devices): which devices exist out of its site and when each changed. Only a device that leaves its
    // scope is its business (its PEP may hold it).
    const tenant = await tenantClient(runtime, "bound-quiet");
    const { attach, register, relabel, follower } = await site(tenant);
    const north = await register("208010000000601", { site: "north" });
    const leaving = await register("208010000000602", { site: "north" });
    const south = await register("208010000000603", { site: "south" });
    await attach("208010000000601", "10.34.0.1");
    await attach("208010000000602", "10.34.0.2");
    await attach("208010000000603", "10.34.0.3");
    const bound = (await tenant.call("POST", "/v1/keys", { name: "north", role: "pep", selector: "site=north" })).json.token as string;
    const pep = follower("site=north", bound);
    await pep.sync.snapshot();
    const since = pep.state.version;

    await attach("208010000000603", "10.34.0.4"); // a fact of the south device
    await tenant.call("POST", `/v1/devices/${south.id}/suspend`, { reason: "maintenance" }); // an action on it
    await relabel(south.id, { site: "south", fleet: "pumps" }); // relabelled, still out of the scope
    const newcomer = await register("208010000000604", { site: "east" }); // a new device elsewhere
    await attach("208010000000604", "10.34.0.5");
    await relabel(leaving.id, { site: "west" }); // leaves the scope: the PEP must drop it
    await attach("208010000000601", "10.34.0.6");

    const delta = await call(runtime, bound, "GET", `/v1/feed?since=${since}&limit=1000`);
    expect(delta.status).toBe(200);
    const entries = delta.json.entries as FeedResponse["entries"];
    expect(entries.filter((entry) => entry.kind === "device").map((entry) => [entry.key, entry.value === null])).toEqual([
      [leaving.id, true],
      [north.id, false],
    ]);
    expect(delta.text).not.toContain(south.id);
    expect(delta.text).not.toContain(newcomer.id);
    // Another instance, which committed none of it, reads the same from the versions in the store.
    const other = await startTestRuntime({ tablePrefix: runtime.ports.tables.identity.replace(/identity$/, "") });
    try {
      const read = await call(other, bound, "GET", `/v1/feed?since=${since}&limit=1000`);
      expect([read.status, read.json.signed.head.version]).toEqual([200, delta.json.signed.head.version]);
      expect(read.json.entries).toEqual(entries);
    } finally {
      await other.stop();
    }
    // What relabels record to tell it (the labels before) is hashed with the trail, and the trail verifies.
    expect((await tenant.call("GET", "/v1/audit/verify?full=true")).json).toMatchObject({ valid: true });

    await pep.catchUp();
    expect(viewOf(pep.state)).toEqual({
      devices: [[north.id, "active", { site: "north" }]],
      bindings: [["10.34.0.6", north.id]],
    });
    expect(pep.sync.stats.rejected).toEqual({});
  });

  it("holds its flow reports to its selector: a device out of it is answered as an unknown one, and nothing of it is kept (review 81)", async () => {
    // POST /v1/flows took any device id from a bound key: its `unknownDevices` told whether an id existed anywhere in the
    // tenant, and it kept flows (the traffic map, the baselines) of devices out of the key's selector.
    const tenant = await tenantClient(runtime, "bound-flows");
    const { pep: unbound, attach, register, relabel } = await site(tenant);
    const north = await register("208010000000601", { site: "north" });
    const south = await register("208010000000602", { site: "south" });
    // Attached before the windows the reports below tell of (a flow known by address is its holder's at the time).
    await attach("208010000000601", "10.34.0.1", new Date(Date.now() - 3 * 60 * 60_000));
    await attach("208010000000602", "10.34.0.2", new Date(Date.now() - 3 * 60 * 60_000));
    const bound = (await tenant.call("POST", "/v1/keys", { name: "north edge", role: "pep", selector: "site=north" })).json.token as string;
    let window = 0;
    const report = (flows: { deviceId?: string; sourceIp?: string; destination: string }[]) => {
      const windowEnd = new Date(Date.now() - 60_000 * (100 - window++));
      return {
        pepId: "edge-north",
        windowStart: new Date(windowEnd.getTime() - 60_000).toISOString(),
        windowEnd: windowEnd.toISOString(),
        flows: flows.map((flow) => ({
          ...flow,
          port: 443,
          protocol: "tcp",
          decision: "allow",
          reason: "allow.rule",
          count: 1,
          bytes: 100,
        })),
      };
    };
    const send = async (key: string, flows: Parameters<typeof report>[0]) => {
      const answer = await call(runtime, key, "POST", "/v1/flows", report(flows));
      expect(answer.status, answer.text).toBe(202);
      const { id, ...rest } = answer.json as { id: string };
      expect(typeof id).toBe("string");
      return rest;
    };

    // Its own device is kept; one of another site is answered exactly as a made-up id.
    expect(
      await send(bound, [
        { deviceId: north.id, destination: "north.example" },
        { deviceId: south.id, destination: "south.example" },
        { deviceId: "dev_made_up", destination: "made-up.example" },
      ]),
    ).toEqual({ flows: 1, unknownDevices: [south.id, "dev_made_up"].sort(), anomalies: 0 });
    const outside = await send(bound, [{ deviceId: south.id, destination: "south.example" }]);
    const madeUp = await send(bound, [{ deviceId: "dev_made_up", destination: "south.example" }]);
    expect(outside).toEqual({ flows: 0, unknownDevices: [south.id], anomalies: 0 });
    expect({ ...outside, unknownDevices: ["dev_made_up"] }).toEqual(madeUp);
    // A flow known only by the address of a device out of the selector is kept as one of an address bound to none.
    const byAddress = await send(bound, [{ sourceIp: "10.34.0.2", destination: "south-by-address.example" }]);
    expect(byAddress).toEqual(await send(bound, [{ sourceIp: "10.34.0.99", destination: "nobody.example" }]));
    expect(byAddress).toEqual({ flows: 1, unknownDevices: [], anomalies: 0 });

    // Nothing of the south device was kept: not in the traffic map, no baseline learned.
    const traffic = async () =>
      ((await tenant.call("GET", "/v1/traffic?hours=3")).json as { edges: { destination: string; devices: string[] }[] }).edges;
    expect(new Set((await traffic()).flatMap((edge) => edge.devices))).toEqual(new Set([north.id]));
    expect((await traffic()).map((edge) => edge.destination)).not.toContain("south.example");
    // (An attach teaches a baseline its bearer: what flows teach it is counted in windows.)
    const windows = async (id: string) => (await readBaseline(runtime.ports, tenant.tenant.id, id))?.windows ?? 0;
    expect([await windows(north.id), await windows(south.id)]).toEqual([1, 0]);

    // Labels are read on each report: a device moved out of the selector is out of it at once.
    await relabel(north.id, { site: "west" });
    expect(await send(bound, [{ deviceId: north.id, destination: "north.example" }])).toEqual({
      flows: 0,
      unknownDevices: [north.id],
      anomalies: 0,
    });

    // An unbound pep key reports on any of the tenant's devices, as before: by address and by id.
    expect(await send(unbound, [{ sourceIp: "10.34.0.2", destination: "south-by-address.example" }])).toEqual(byAddress);
    expect(await windows(south.id)).toBe(1);
    expect(
      await send(unbound, [
        { deviceId: north.id, destination: "north.example" },
        { deviceId: south.id, destination: "south.example" },
        { deviceId: "dev_made_up", destination: "made-up.example" },
      ]),
    ).toMatchObject({ flows: 2, unknownDevices: ["dev_made_up"] });
    expect((await traffic()).flatMap((edge) => edge.devices)).toContain(south.id);
  });

  it("binds only pep keys, to a valid selector (400 naming the field, no key made)", async () => {
    const tenant = await tenantClient(runtime, "bound-keys");
    for (const body of [
      { name: "viewer", role: "viewer", selector: "site=north" },
      { name: "admin", role: "admin", selector: "site=north" },
      { name: "bad", role: "pep", selector: "Site=" },
    ]) {
      const refused = await tenant.call("POST", "/v1/keys", body);
      expect([refused.status, refused.headers.get("content-type"), refused.json.errors?.[0]?.path], refused.text).toEqual([
        400,
        "application/problem+json",
        "selector",
      ]);
    }
    expect((await tenant.call("GET", "/v1/keys")).json.items.map((key: { name: string }) => key.name)).toEqual(["bound-keys admin"]);
  });
});
