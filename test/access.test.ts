import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rateLimitFields } from "./support/rate-limit-headers.ts";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

describe("API keys", () => {
  it("creates keys shown once, enforces their role, rotates and revokes them", async () => {
    const acme = await tenantClient(runtime);
    const created = await acme.call("POST", "/v1/keys", { name: "dashboard", role: "viewer" });
    expect(created.status).toBe(201);
    const viewer = created.json.token as string;
    expect(viewer).toMatch(/^sr_key_/);
    const listed = await acme.call("GET", "/v1/keys");
    expect(listed.json.items.map((key: { name: string }) => key.name).sort()).toEqual(["acme admin", "dashboard"]);
    expect(listed.text).not.toContain(viewer.slice(-43));

    expect((await call(runtime, viewer, "GET", "/v1/devices")).status).toBe(200);
    const forbidden = await call(runtime, viewer, "POST", "/v1/devices", { imsi: "234100000000001" });
    expect(forbidden.status).toBe(403);
    expect(forbidden.json.type).toBe("urn:simroot:problem:auth.forbidden");

    const rotated = await acme.call("POST", `/v1/keys/${created.json.key.keyId}/rotate`);
    expect(rotated.status).toBe(200);
    expect((await call(runtime, viewer, "GET", "/v1/devices")).status).toBe(401);
    expect((await call(runtime, rotated.json.token, "GET", "/v1/devices")).status).toBe(200);

    expect((await acme.call("DELETE", `/v1/keys/${created.json.key.keyId}`)).json.revokedAt).toBeDefined();
    expect((await call(runtime, rotated.json.token, "GET", "/v1/devices")).status).toBe(401);
    expect((await acme.call("DELETE", `/v1/keys/${acme.keyId}`)).status).toBe(409);
    const audit = (await acme.call("GET", "/v1/audit")).json.items.map((record: { action: string }) => record.action);
    expect(audit).toEqual(["tenant.created", "key.created", "key.rotated", "key.revoked"]);
  });

  it("makes no key of a role no route admits, and says where ingestion's credentials are (review 69)", async () => {
    // An `ingest` key was created, listed and documented, but admitted by no route: ingestion authenticates each
    // source by its own credentials. Its holder got 403 everywhere, and an integrator wondering why.
    const acme = await tenantClient(runtime, "no-ingest-role");
    const refused = await acme.call("POST", "/v1/keys", { name: "core-webhook", role: "ingest" });
    expect([refused.status, refused.headers.get("content-type"), refused.json.errors?.[0]?.message]).toEqual([
      400,
      "application/problem+json",
      expect.stringMatching(/\/v1\/sources/),
    ]);
    expect((await acme.call("GET", "/v1/keys")).json.items.map((key: { name: string }) => key.name)).toEqual(["no-ingest-role admin"]);
  });
});

describe("tenant settings", () => {
  it("keeps the fail mode an admin's, whichever route writes it (review 73)", async () => {
    // PATCH /v1/tenant/settings is an admin's; PUT /v1/enforcement, open to operators for the quarantine
    // destinations, wrote the same fail mode: an operator turned the tenant fail-open there.
    const acme = await tenantClient(runtime, "fail-mode-admin");
    const operator = (await acme.call("POST", "/v1/keys", { name: "ops", role: "operator" })).json.token as string;
    const read = await call(runtime, operator, "GET", "/v1/enforcement");
    const destinations = [{ fqdn: "remediation.example.com", protocol: "tcp", ports: [443] }];
    const opened = await call(
      runtime,
      operator,
      "PUT",
      "/v1/enforcement",
      { quarantineDestinations: destinations, failMode: "open" },
      { "if-match": read.headers.get("etag")! },
    );
    expect([opened.status, opened.json.type], opened.text).toEqual([403, "urn:simroot:problem:auth.forbidden"]);
    expect((await acme.call("GET", "/v1/tenant")).json.settings.failMode).toBe("closed");
    // The destinations stay the operator's to change, the fail mode as it is.
    const kept = await call(
      runtime,
      operator,
      "PUT",
      "/v1/enforcement",
      { quarantineDestinations: destinations, failMode: "closed" },
      { "if-match": read.headers.get("etag")! },
    );
    expect([kept.status, kept.json.quarantineDestinations]).toEqual([200, destinations]);
    // An admin changes it there too.
    const admin = await acme.call(
      "PUT",
      "/v1/enforcement",
      { quarantineDestinations: destinations, failMode: "open" },
      {
        "if-match": kept.headers.get("etag")!,
      },
    );
    expect(admin.status).toBe(200);
    expect((await acme.call("GET", "/v1/tenant")).json.settings.failMode).toBe("open");
  });

  it("refuses a rate limit above the deployment's ceiling, naming it, and holds a stored one to it (review 73)", async () => {
    // A tenant admin raised its own limits to 1,000,000 a minute: nothing but the schema's maximum bounded them.
    const acme = await tenantClient(runtime, "rate-ceiling");
    const tenant = await acme.call("GET", "/v1/tenant");
    const etag = tenant.headers.get("etag")!;
    const above = await acme.call(
      "PATCH",
      "/v1/tenant/settings",
      { rateLimits: { apiKeyPerMinute: 60_001, pepKeyPerMinute: 600_000 }, imeiLock: false },
      { "if-match": etag },
    );
    expect([above.status, above.headers.get("content-type"), above.json.type], above.text).toEqual([
      400,
      "application/problem+json",
      "urn:simroot:problem:tenant_settings.rate_limit_above_ceiling",
    ]);
    expect(above.json.errors).toEqual([
      {
        path: "rateLimits.apiKeyPerMinute",
        message: "at most 60000 (the deployment's ceiling, SIMROOT_RATE_LIMIT_MAX_API_KEY_PER_MINUTE)",
      },
    ]);
    // Nothing changed: neither the limits nor the rest of the PATCH.
    const unchanged = await acme.call("GET", "/v1/tenant");
    expect([unchanged.headers.get("etag"), unchanged.json.settings]).toEqual([etag, tenant.json.settings]);
    // At the ceiling is allowed.
    const at = await acme.call("PATCH", "/v1/tenant/settings", { rateLimits: { apiKeyPerMinute: 60_000 } }, { "if-match": etag });
    expect([at.status, at.json.settings?.rateLimits.apiKeyPerMinute], at.text).toEqual([200, 60_000]);
    // The operator lowers the ceiling: a higher setting is refused, and the one stored is held to it.
    process.env.SIMROOT_RATE_LIMIT_MAX_API_KEY_PER_MINUTE = "1000";
    try {
      const lowered = await acme.call(
        "PATCH",
        "/v1/tenant/settings",
        { rateLimits: { apiKeyPerMinute: 5000 } },
        { "if-match": at.headers.get("etag")! },
      );
      expect([lowered.status, lowered.json.errors?.[0]?.message]).toEqual([400, expect.stringMatching(/^at most 1000 /)]);
      expect(rateLimitFields((await acme.call("GET", "/v1/devices")).headers).policies.default).toEqual({ q: 1000, w: 60 });
    } finally {
      delete process.env.SIMROOT_RATE_LIMIT_MAX_API_KEY_PER_MINUTE;
    }
  });

  it("shows the rate limits applied beside those set, and the deployment's ceilings (review 81)", async () => {
    // A limit stored above a lowered ceiling is held to it, but GET /v1/tenant showed only the stored one.
    const acme = await tenantClient(runtime, "rate-applied");
    const tenant = await acme.call("GET", "/v1/tenant");
    expect([
      tenant.json.settings.rateLimits,
      tenant.json.appliedRateLimits,
      tenant.json.rateLimitCeilings,
      tenant.json.tenantRateLimits,
    ]).toEqual([
      { apiKeyPerMinute: 6_000, pepKeyPerMinute: 120_000, sourcePerMinute: 6_000 },
      { apiKeyPerMinute: 6_000, pepKeyPerMinute: 120_000, sourcePerMinute: 6_000 },
      { apiKeyPerMinute: 60_000, pepKeyPerMinute: 600_000, sourcePerMinute: 60_000 },
      { apiKeysPerMinute: 30_000, pepKeysPerMinute: 6_000_000, sourcesPerMinute: 60_000 },
    ]);
    const raised = await acme.call(
      "PATCH",
      "/v1/tenant/settings",
      { rateLimits: { apiKeyPerMinute: 50_000, sourcePerMinute: 20_000 } },
      { "if-match": tenant.headers.get("etag")! },
    );
    expect([raised.status, raised.json.appliedRateLimits?.apiKeyPerMinute], raised.text).toEqual([200, 50_000]);
    // The operator lowers two ceilings: the tenant shows the limits counted, the ones set, and the ceilings that hold them.
    process.env.SIMROOT_RATE_LIMIT_MAX_API_KEY_PER_MINUTE = "1000";
    process.env.SIMROOT_RATE_LIMIT_MAX_PEP_KEY_PER_MINUTE = "200000";
    try {
      const shown = await acme.call("GET", "/v1/tenant");
      expect([shown.json.settings.rateLimits, shown.json.appliedRateLimits, shown.json.rateLimitCeilings]).toEqual([
        { apiKeyPerMinute: 50_000, pepKeyPerMinute: 120_000, sourcePerMinute: 20_000 },
        { apiKeyPerMinute: 1_000, pepKeyPerMinute: 120_000, sourcePerMinute: 20_000 },
        { apiKeyPerMinute: 1_000, pepKeyPerMinute: 200_000, sourcePerMinute: 60_000 },
      ]);
      // What it shows is what is counted.
      expect(rateLimitFields(shown.headers).policies).toEqual({
        default: { q: shown.json.appliedRateLimits.apiKeyPerMinute, w: 60 },
        tenant: { q: shown.json.tenantRateLimits.apiKeysPerMinute, w: 60 },
      });
      // The settings route answers the same way.
      const changed = await acme.call("PATCH", "/v1/tenant/settings", { imeiLock: false }, { "if-match": shown.headers.get("etag")! });
      expect([changed.status, changed.json.appliedRateLimits, changed.json.rateLimitCeilings], changed.text).toEqual([
        200,
        shown.json.appliedRateLimits,
        shown.json.rateLimitCeilings,
      ]);
      expect(changed.json.settings.rateLimits).toEqual(shown.json.settings.rateLimits);
    } finally {
      delete process.env.SIMROOT_RATE_LIMIT_MAX_API_KEY_PER_MINUTE;
      delete process.env.SIMROOT_RATE_LIMIT_MAX_PEP_KEY_PER_MINUTE;
    }
  });

  it("needs If-Match, refuses a stale ETag, and the new settings take effect", async () => {
    const acme = await tenantClient(runtime);
    const tenant = await acme.call("GET", "/v1/tenant");
    expect(tenant.json.settings).toEqual({
      imeiLock: true,
      allowedCountries: [],
      countryRules: [],
      failMode: "closed",
      rateLimits: { apiKeyPerMinute: 6000, pepKeyPerMinute: 120000, sourcePerMinute: 6000 },
    });
    const etag = tenant.headers.get("etag")!;

    expect((await acme.call("PATCH", "/v1/tenant/settings", { imeiLock: false })).status).toBe(428);
    expect((await acme.call("PATCH", "/v1/tenant/settings", { imeiLock: false }, { "if-match": '"99"' })).status).toBe(412);
    const bad = await acme.call("PATCH", "/v1/tenant/settings", { allowedCountries: ["France"] }, { "if-match": etag });
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].path).toContain("allowedCountries");

    const changed = await acme.call("PATCH", "/v1/tenant/settings", { imeiLock: false, allowedCountries: ["FR"] }, { "if-match": etag });
    expect(changed.status).toBe(200);
    expect(changed.json.settings).toMatchObject({ imeiLock: false, allowedCountries: ["FR"] });
    expect((await acme.call("PATCH", "/v1/tenant/settings", { failMode: "open" }, { "if-match": etag })).status).toBe(412);
  });

  it("lets only the platform tenant's admins create tenants", async () => {
    const acme = await tenantClient(runtime);
    expect((await acme.call("POST", "/v1/tenants", { name: "globex" })).status).toBe(403);
  });
});

describe("device updates and idempotent POSTs", () => {
  it("updates under If-Match and answers 412 to a stale ETag", async () => {
    const acme = await tenantClient(runtime);
    const device = await acme.call("POST", "/v1/devices", { imsi: "234100000000001", labels: { fleet: "meters" } });
    const path = `/v1/devices/${device.json.id}`;
    expect((await acme.call("PATCH", path, { labels: { fleet: "pumps" } })).status).toBe(428);
    const updated = await acme.call(
      "PATCH",
      path,
      { labels: { fleet: "pumps", site: "lyon" } },
      { "if-match": device.headers.get("etag")! },
    );
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({ labels: { fleet: "pumps", site: "lyon" }, revision: 2 });
    expect(updated.headers.get("etag")).toBe('"2"');
    expect((await acme.call("PATCH", path, { name: "late" }, { "if-match": '"1"' })).status).toBe(412);
    expect((await acme.call("GET", path)).json.labels).toEqual({ fleet: "pumps", site: "lyon" });
  });

  it("answers a retried POST with the first response and acts once", async () => {
    const acme = await tenantClient(runtime);
    const body = { imsi: "234100000000002" };
    const first = await acme.call("POST", "/v1/devices", body, { "idempotency-key": "register-42" });
    const retry = await acme.call("POST", "/v1/devices", body, { "idempotency-key": "register-42" });
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.json.id).toBe(first.json.id);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect((await acme.call("GET", "/v1/devices")).json.items).toHaveLength(1);
    const reused = await acme.call("POST", "/v1/devices", { imsi: "234100000000003" }, { "idempotency-key": "register-42" });
    expect(reused.status).toBe(422);
    // Another credential's identical key is another request.
    const globex = await tenantClient(runtime, "globex");
    expect((await globex.call("POST", "/v1/devices", body, { "idempotency-key": "register-42" })).json.id).not.toBe(first.json.id);
  });

  it("keeps no shown-once secret of a retried POST in the store: the kept answer opens only with the caller's own key", async () => {
    // Found by review 55: the kept answer of POST /v1/keys held the new key's token in plain text for 24 h.
    const acme = await tenantClient(runtime, "idempotent-secrets");
    const body = { name: "pep-lyon", role: "pep" };
    const first = await acme.call("POST", "/v1/keys", body, { "idempotency-key": "key-once" });
    expect(first.status).toBe(201);
    const token = String(first.json.token);
    const { Items = [] } = await runtime.ports.db.send(new ScanCommand({ TableName: runtime.ports.tables.control }));
    expect(Items.filter((item) => JSON.stringify(item).includes(token)).map((item) => item.pk)).toEqual([]);
    // The retry still gets the first answer, the token in it.
    const retry = await acme.call("POST", "/v1/keys", body, { "idempotency-key": "key-once" });
    expect([retry.status, retry.headers.get("idempotent-replayed"), retry.json.token]).toEqual([201, "true", token]);
  });
});

describe("what an operator reads of the audit trail (review 73)", () => {
  // Operators are refused /v1/audit but read a device's timeline and its incidents, which are made of audit records:
  // they run the fleet and need them. What they read there is the device's own records as the timeline shows them
  // (README "Roles"): never the chain's fields, another subject's records or another tenant's.
  it("reads a device's timeline and incidents without the chain's fields, and no audit record of any other subject", async () => {
    const acme = await tenantClient(runtime, "operator-timeline");
    const created = (await acme.call("POST", "/v1/keys", { name: "ops", role: "operator" })).json;
    const operator = created.token as string;
    const device = (await acme.call("POST", "/v1/devices", { imsi: "234100000000077" })).json as { id: string };
    expect((await call(runtime, operator, "POST", `/v1/devices/${device.id}/suspend`, { reason: "maintenance" })).status).toBe(200);

    const timeline = await call(runtime, operator, "GET", `/v1/devices/${device.id}/timeline`);
    expect(timeline.status).toBe(200);
    const entries = timeline.json.items as Record<string, unknown>[];
    expect(entries.map((entry) => [entry.type, entry.actor])).toEqual([
      ["device.registered", `key:${acme.keyId}`],
      ["device.suspended", `key:${created.key.keyId}`],
    ]);
    for (const entry of entries) expect(Object.keys(entry).sort()).toEqual(["actor", "data", "eventId", "seq", "time", "type"]);

    const incident = (await call(runtime, operator, "POST", "/v1/incidents", { deviceId: device.id })).json as { id: string };
    const report = await call(runtime, operator, "GET", `/v1/incidents/${incident.id}`);
    expect(report.status).toBe(200);
    for (const entry of report.json.timeline) expect(Object.keys(entry).sort()).toEqual(["actor", "data", "seq", "time", "type"]);
    // The chain's fields are not there; a change's own data may name the request that caused it (README "Roles").
    expect(report.text).not.toMatch(/"(prevHash|hash|feed|leases|shard)"/);
    expect(timeline.text).not.toMatch(/"(prevHash|hash|feed|leases|shard)"/);

    // The tenant's trail, by any route or filter, stays the admins' and viewers'.
    for (const path of [
      "/v1/audit",
      `/v1/audit?subject=${device.id}`,
      "/v1/audit/export",
      "/v1/audit/verify",
      "/v1/ocsf/events?kind=audit",
    ]) {
      const refused = await call(runtime, operator, "GET", path);
      expect([path, refused.status, refused.json.type]).toEqual([path, 403, "urn:simroot:problem:auth.forbidden"]);
    }
    // A timeline is a device's: a key's (or the tenant's) records are not read through it.
    for (const subject of [acme.keyId, acme.tenant.id]) {
      const refused = await call(runtime, operator, "GET", `/v1/devices/${subject}/timeline`);
      expect([400, 404], refused.text).toContain(refused.status);
    }
    // Nor is another tenant's device.
    const globex = await tenantClient(runtime, "operator-timeline-other");
    const theirs = (await globex.call("POST", "/v1/keys", { name: "ops", role: "operator" })).json.token as string;
    expect((await call(runtime, theirs, "GET", `/v1/devices/${device.id}/timeline`)).status).toBe(404);
    expect((await call(runtime, theirs, "GET", `/v1/incidents/${incident.id}`)).status).toBe(404);
  });
});

describe("documentation and export", () => {
  it("serves an interactive reference at /docs", async () => {
    const docs = await call(runtime, undefined, "GET", "/docs");
    expect(docs.status).toBe(200);
    expect(docs.headers.get("content-type")).toContain("text/html");
    // Its scripts are served by the control plane itself (pinned, offline), not a CDN: Scalar, then what mounts it on
    // the API's document (a file of its own: the page's CSP allows no inline script).
    const scripts = [...docs.text.matchAll(/<script src="([^"]+)"/g)].map((match) => match[1]!);
    expect(scripts).toHaveLength(2);
    expect(scripts[0]).toMatch(/^\/docs\/scalar-api-reference-[\d.]+\.js$/);
    expect(scripts[1]).toBe("/docs/mount.js");
    for (const script of scripts) {
      const served = await call(runtime, undefined, "GET", script);
      expect([served.status, served.headers.get("content-type")]).toEqual([200, "text/javascript; charset=utf-8"]);
    }
    expect((await call(runtime, undefined, "GET", "/docs/mount.js")).text).toContain('url: "/openapi.json"');
    expect((await call(runtime, undefined, "GET", "/docs/scalar-api-reference-0.0.1.js")).status).toBe(404);
  });

  it("exports the audit chain as JSON Lines", async () => {
    const acme = await tenantClient(runtime);
    for (const imsi of ["234100000000004", "234100000000005"]) await acme.call("POST", "/v1/devices", { imsi });
    const exported = await acme.call("GET", "/v1/audit/export");
    expect(exported.headers.get("content-type")).toContain("application/x-ndjson");
    const lines = exported.text
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    // The tenant's creation and two registrations, shard by shard: each shard's records in order, each chained to the one before.
    expect(lines.map((record) => record.action).sort()).toEqual(["device.registered", "device.registered", "tenant.created"]);
    const shards = Map.groupBy(lines as { shard: number; seq: number; prevHash: string; hash: string }[], (record) => record.shard);
    for (const records of shards.values()) {
      expect(records.map((record) => record.seq)).toEqual(records.map((_, n) => n + 1));
      records.slice(1).forEach((record, n) => {
        expect(record.prevHash).toBe(records[n]!.hash);
      });
    }
  });
});
