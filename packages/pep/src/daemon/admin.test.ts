import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { PepEngine } from "../engine.ts";
import { binding, device, rule, settings, testFeed } from "../feed.test-support.ts";
import { PepState } from "../state.ts";
import { adminHandler, health } from "./admin.ts";

const feed = testFeed();
const state = new PepState(feed.tenantId);
const snapshot = feed.snapshot(7, [device("dev_a"), binding("10.20.0.7", "dev_a"), rule("r1"), settings()]);
state.replaceWith(snapshot.entries);
state.version = 7;
state.head = snapshot.signed;
const engine = new PepEngine(state, { now: feed.now });

const server = createServer(adminHandler({ engine, state }));
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
afterAll(() => server.close());
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const decide = (body: unknown) =>
  fetch(`${base}/v1/decide`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

describe("the admin listener", () => {
  it("decides a JSON request", async () => {
    const allowed = await decide({ sourceIp: "10.20.0.7", destination: { fqdn: "ingest.example.com" }, port: 8883, protocol: "tcp" });
    expect(allowed.status).toBe(200);
    expect(await allowed.json()).toMatchObject({ allow: true, reason: "allow.rule", ruleId: "r1", deviceId: "dev_a" });
    const denied = await decide({
      deviceId: "dev_a",
      destination: { ip: "203.0.113.1" },
      port: 22,
      protocol: "tcp",
      bearer: "wifi",
      country: "FR",
    });
    expect(await denied.json()).toMatchObject({ allow: false, reason: "deny.default" });
  });

  it("answers problem details to an invalid request", async () => {
    const invalid = await decide({ destination: {}, port: 70000, protocol: "icmp", extra: true });
    expect(invalid.status).toBe(400);
    expect(invalid.headers.get("content-type")).toBe("application/problem+json");
    const problem = (await invalid.json()) as { type: string; errors: { path: string }[] };
    expect(problem.type).toBe("urn:simroot:problem:request.invalid");
    expect(problem.errors.map((error) => error.path)).toEqual(expect.arrayContaining(["port", "protocol", "destination"]));
    expect((await decide("{not json")).status).toBe(400);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    // An address with a zone id is another key than every binding and revoked address (review 85).
    const zoned = await decide({
      sourceIp: "::ffff:10.20.0.7%1",
      destination: { fqdn: "ingest.example.com" },
      port: 8883,
      protocol: "tcp",
    });
    expect(zoned.status).toBe(400);
  });

  it("reports health: the version, the head's expiry, and 503 once failing closed", async () => {
    const healthy = await fetch(`${base}/healthz`);
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toMatchObject({
      status: "ok",
      failClosed: false,
      tenantId: feed.tenantId,
      version: 7,
      headExpiresAt: snapshot.signed.head.expiresAt,
      view: { devices: 1, bindings: 1, rules: 1, grants: 0 },
    });
    feed.advance(60_000);
    const stale = await fetch(`${base}/healthz`);
    expect(stale.status).toBe(503);
    expect(await stale.json()).toMatchObject({ status: "fail-closed", failClosed: true, version: 7 });
  });

  it("reports a snapshot under way whose revocations it enforces early, and since when: 200 while fresh, 503 once stale (review 70)", async () => {
    // The PEP then enforces a partial view (the snapshot's revocations over the older version's view): /healthz said
    // nothing of it.
    const feed = testFeed();
    const state = new PepState(feed.tenantId);
    const first = feed.snapshot(7, [device("dev_a"), binding("10.20.0.7", "dev_a"), device("dev_b"), rule("r1"), settings()]);
    state.replaceWith(first.entries);
    state.version = 7;
    state.head = first.signed;
    const engine = new PepEngine(state, { now: feed.now });
    const server = createServer(adminHandler({ engine, state }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const healthz = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
      expect(await (await fetch(healthz)).json()).toMatchObject({ status: "ok", snapshot: { pending: false } });

      feed.advance(2_000);
      const since = new Date(feed.now()).toISOString();
      const revoked = { ...device("dev_a", "revoked"), value: { ...device("dev_a", "revoked").value, lastAddresses: ["10.20.0.7"] } };
      state.applyRevocations(feed.snapshot(9, [revoked], { last: false, next: "page-1" }).entries, feed.now());
      // A later page of the same snapshot keeps the time it became pending.
      feed.advance(1_000);
      state.applyRevocations(feed.snapshot(9, [device("dev_b", "revoked")], { page: 1, last: false, next: "page-2" }).entries, feed.now());
      const pending = await fetch(healthz);
      expect(pending.status).toBe(200);
      expect(await pending.json()).toMatchObject({
        status: "ok",
        failClosed: false,
        version: 7,
        snapshot: { pending: true, since, revokedAddresses: 1 },
      });
      // A restart keeps it pending (the state file), and since when.
      const restored = PepState.fromJSON(JSON.parse(JSON.stringify(state)));
      expect(health({ engine: new PepEngine(restored, { now: feed.now }), state: restored }).snapshot).toEqual({
        pending: true,
        since,
        revokedAddresses: 1,
      });

      // The head held expires before the snapshot completes: failing closed, as any stale feed.
      feed.advance(60_000);
      const stale = await fetch(healthz);
      expect(stale.status).toBe(503);
      expect(await stale.json()).toMatchObject({ failClosed: true, snapshot: { pending: true, since } });

      const complete = feed.snapshot(9, [revoked, device("dev_b", "revoked"), rule("r1"), settings()]);
      state.replaceWith(complete.entries);
      state.version = 9;
      state.head = complete.signed;
      const done = await fetch(healthz);
      expect(done.status).toBe(200);
      expect(await done.json()).toMatchObject({ status: "ok", version: 9, snapshot: { pending: false } });
      expect(JSON.parse(JSON.stringify(state)).snapshotPendingSince).toBeUndefined();
    } finally {
      server.close();
    }
  });
});
