import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { PepEngine } from "../engine.ts";
import { binding, device, rule, settings, testFeed } from "../feed.test-support.ts";
import { PepState } from "../state.ts";
import { adminHandler } from "./admin.ts";

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
});
