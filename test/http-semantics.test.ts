import { serve } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const cursorOf = (key: unknown) => Buffer.from(JSON.stringify(key)).toString("base64url");

describe("HTTP semantics (RFC 9110)", () => {
  it("takes the Bearer auth scheme case-insensitively", async () => {
    const acme = await tenantClient(runtime);
    for (const scheme of ["bearer", "BEARER", "Bearer"]) {
      expect((await call(runtime, undefined, "GET", "/v1/devices", undefined, { authorization: `${scheme} ${acme.token}` })).status).toBe(
        200,
      );
    }
  });

  it("authenticates, counts and fingerprints a request once where a path segment reads like a route's parameter (`:id`)", async () => {
    // Hono's trie router matches a segment that is literally a parameter's name (`/v1/devices/:id`) once as the
    // parameter and once as the name: the route's middleware ran twice, taking two of the key's requests, and its
    // Idempotency-Key claimed twice, so the request answered 409 "in progress" to itself (and kept that answer).
    const acme = await tenantClient(runtime);
    const remaining = (response: { headers: Headers }) => Number(/;r=(\d+)/.exec(response.headers.get("ratelimit") ?? "")?.[1]);
    const before = await acme.call("GET", "/v1/devices");
    const literal = await acme.call("GET", "/v1/devices/:id");
    const after = await acme.call("GET", "/v1/devices");
    expect(literal.status).toBe(400);
    expect([remaining(before) - remaining(literal), remaining(literal) - remaining(after)]).toEqual([1, 1]);
    const plain = await acme.call("POST", "/v1/incidents/:id/close", {});
    const keyed = await acme.call("POST", "/v1/incidents/:id/close", {}, { "idempotency-key": "literal-parameter" });
    expect(keyed.status).toBe(plain.status);
    expect(keyed.json.type).toBe(plain.json.type);
  });

  it("evaluates If-Match: * matches, a current strong tag matches, a weak or other tag is 412, none is 428", async () => {
    const acme = await tenantClient(runtime);
    const device = (await acme.call("POST", "/v1/devices", { imsi: "234100000000081" })).json;
    const patch = (ifMatch?: string) =>
      acme.call("PATCH", `/v1/devices/${device.id}`, { labels: { site: "a" } }, ifMatch === undefined ? {} : { "if-match": ifMatch });
    expect((await patch()).status).toBe(428);
    const weak = await patch(`W/"${device.revision}"`);
    expect(weak.status).toBe(412);
    const zero = await patch('"0"');
    expect(zero.status).toBe(412);
    expect(zero.json.type).toBe("urn:simroot:problem:request.precondition_failed");
    const star = await patch("*");
    expect(star.status).toBe(200);
    const listed = await patch(`"999", ${star.headers.get("etag")}`);
    expect(listed.status).toBe(200);
    expect((await acme.call("PATCH", "/v1/devices/dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST", { labels: {} }, { "if-match": "*" })).status).toBe(404);
  });

  it("answers 405 with Allow for a known path and an unknown method, 404 for an unknown path", async () => {
    const acme = await tenantClient(runtime);
    const wrong = await acme.call("PUT", "/v1/devices");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")?.split(", ").sort()).toEqual(["GET", "HEAD", "POST"]);
    expect(wrong.headers.get("content-type")).toContain("application/problem+json");
    const param = await acme.call("POST", "/v1/devices/dev_1");
    expect(param.status).toBe(405);
    expect(param.headers.get("allow")?.split(", ")).toContain("PATCH");
    expect((await acme.call("GET", "/v1/nothing-here")).status).toBe(404);
  });

  it("answers 400, not 500, to forged list, audit and parked cursors", async () => {
    const acme = await tenantClient(runtime);
    await acme.call("POST", "/v1/devices", { imsi: "234100000000082" });
    const tenantId = acme.tenant.id;
    const forged = [
      cursorOf({ gsi1pk: `T#${tenantId}#device` }),
      cursorOf({ gsi1pk: `T#${tenantId}#device`, pk: { nested: true }, sk: 1 }),
      cursorOf([1, 2]),
      "%%%",
      cursorOf({ gsi1pk: `T#${tenantId}#device`, extra: "x", pk: "a", sk: "b", gsi1sk: "c" }),
    ];
    for (const cursor of forged) {
      for (const path of ["/v1/devices", "/v1/keys", "/v1/sources", "/v1/audit", "/v1/dead-letters", "/v1/policies"]) {
        const response = await acme.call("GET", `${path}?cursor=${encodeURIComponent(cursor)}`);
        expect([path, cursor, response.status]).toEqual([path, cursor, 400]);
      }
    }
  });
});

describe("413 on a keep-alive connection", () => {
  it("reaches Node's fetch as a 413, and the next request on the connection works", async () => {
    const acme = await tenantClient(runtime);
    const server = serve({ fetch: runtime.app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise((resolve) => server.once("listening", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const headers = { authorization: `Bearer ${acme.token}`, "content-type": "application/json" };
      const big = await fetch(`${base}/v1/devices`, { method: "POST", headers, body: "x".repeat(8 * 1024 * 1024) });
      expect(big.status).toBe(413);
      expect(((await big.json()) as { type: string }).type).toBe("urn:simroot:problem:request.too_large");
      const next = await fetch(`${base}/v1/devices`, { headers });
      expect(next.status).toBe(200);
    } finally {
      server.close();
    }
  });
});

describe("/docs", () => {
  it("loads the reference from this server only (pinned bundle, no CDN)", async () => {
    const docs = await call(runtime, undefined, "GET", "/docs");
    expect(docs.status).toBe(200);
    const scripts = [...docs.text.matchAll(/<script[^>]*src="([^"]+)"/g)].map((match) => match[1]!);
    // Scalar's bundle, then the file that mounts it (no inline script).
    expect(scripts).toEqual([expect.stringMatching(/^\/docs\/scalar-api-reference-[0-9.]+\.js$/), "/docs/mount.js"]);
    expect(docs.text).not.toMatch(/https?:\/\//);
    const bundle = await runtime.app.request(scripts[0]!);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get("content-type")).toContain("javascript");
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
  });

  it("runs no inline script, under a CSP that allows none and refuses framing: it shares the console's origin, and its tab's key (review 79)", async () => {
    // The reference had no CSP and an inline script: a tab signed in to the console and then opened on /docs gave the
    // key in its sessionStorage to whatever script ran there, and the page could be framed by any site.
    const docs = await runtime.app.request("/docs");
    const policy = docs.headers.get("content-security-policy") ?? "";
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).toMatch(/script-src 'self'(;|$)/);
    expect(policy).not.toMatch(/script-src[^;]*'unsafe-(inline|eval)'/);
    expect(docs.headers.get("x-content-type-options")).toBe("nosniff");
    expect(docs.headers.get("referrer-policy")).toBe("no-referrer");
    const html = await docs.text();
    const scripts = [...html.matchAll(/<script([^>]*)>([^<]*)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attributes, body] of scripts) {
      expect(attributes).toMatch(/src="\/docs\//);
      expect(body!.trim()).toBe("");
      const script = await runtime.app.request(/src="([^"]+)"/.exec(attributes!)![1]!);
      expect(script.status).toBe(200);
      expect(script.headers.get("content-type")).toContain("javascript");
      expect(script.headers.get("x-content-type-options")).toBe("nosniff");
    }
  });
});

describe("a PATCH that changes nothing", () => {
  it("is refused when empty, and answers the resource as it is when it names the values held: no new revision, no audit record (rules, webhooks, devices, tenant settings)", async () => {
    const acme = await tenantClient(runtime);
    const audited = async () => (await acme.call("GET", "/v1/audit?limit=500")).json.items.length as number;
    const rule = (
      await acme.call("POST", "/v1/automation/rules", {
        name: "quarantine on anomaly",
        pattern: { source: ["simroot"], "detail-type": ["anomaly.detected"] },
        actions: [{ type: "quarantine" }],
      })
    ).json;
    const webhook = (await acme.call("POST", "/v1/webhooks", { url: "https://hooks.example.com/in", pattern: { source: ["simroot"] } }))
      .json;
    const device = (await acme.call("POST", "/v1/devices", { imsi: "208010000000041", name: "meter", labels: { fleet: "m" } })).json;
    const tenant = await acme.call("GET", "/v1/tenant");
    const cases: [string, string, unknown, unknown][] = [
      [`/v1/automation/rules/${rule.id}`, `"${rule.revision}"`, {}, { name: rule.name, enabled: rule.enabled }],
      [`/v1/webhooks/${webhook.id}`, `"${webhook.revision}"`, {}, { url: webhook.url }],
      [`/v1/devices/${device.id}`, (await acme.call("GET", `/v1/devices/${device.id}`)).headers.get("etag")!, {}, { name: "meter" }],
      ["/v1/tenant/settings", tenant.headers.get("etag")!, {}, { failMode: tenant.json.settings.failMode }],
    ];
    const before = await audited();
    for (const [path, etag, empty, same] of cases) {
      const read = path === "/v1/tenant/settings" ? "/v1/tenant" : path;
      const was = await acme.call("GET", read);
      // An empty change is refused (problem+json), one naming the values held is answered with the resource as it is.
      const refused = await acme.call("PATCH", path, empty, { "if-match": etag });
      expect([path, refused.status, refused.headers.get("content-type")]).toEqual([path, 400, "application/problem+json"]);
      const answer = await acme.call("PATCH", path, same, { "if-match": etag });
      expect([path, answer.status], answer.text).toEqual([path, 200]);
      expect([path, answer.headers.get("etag")]).toEqual([path, was.headers.get("etag")]);
      expect((await acme.call("GET", read)).json).toEqual(was.json);
    }
    expect(await audited()).toBe(before);
  });

  it("takes a device's allowedCountries null as a change only when it holds countries of its own (review 59)", async () => {
    const acme = await tenantClient(runtime);
    const own = (await acme.call("POST", "/v1/devices", { imsi: "208010000000091", allowedCountries: ["FR"] })).json;
    const none = (await acme.call("POST", "/v1/devices", { imsi: "208010000000092" })).json;
    const patch = async (id: string, body: unknown) => {
      const etag = (await acme.call("GET", `/v1/devices/${id}`)).headers.get("etag")!;
      return acme.call("PATCH", `/v1/devices/${id}`, body, { "if-match": etag });
    };
    const cleared = await patch(own.id, { allowedCountries: null });
    expect([cleared.status, cleared.json.revision, cleared.json.allowedCountries]).toEqual([200, own.revision + 1, undefined]);
    const same = await patch(none.id, { allowedCountries: null });
    expect([same.status, same.json.revision]).toEqual([200, none.revision]);
    const mixed = await patch(none.id, { allowedCountries: null, name: "renamed" });
    expect([mixed.status, mixed.json.revision, mixed.json.name]).toEqual([200, none.revision + 1, "renamed"]);
    const emptied = await patch(own.id, { allowedCountries: [] });
    expect([emptied.status, emptied.json.revision, emptied.json.allowedCountries]).toEqual([200, own.revision + 2, []]);
  });
});
