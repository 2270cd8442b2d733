/**
 * Tenant isolation over every route: tenant B's admin key, aimed at each of tenant A's
 * resources through every operation of the OpenAPI document, never reads or changes them.
 * A route with a path parameter this test does not know fails it, so new routes must join.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { domainEvent } from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

/** Routes outside tenancy: public documents, and ingestion (authenticated by the source's own credentials). */
const untenanted = new Set(["/health", "/openapi.json", "/asyncapi.json", "/docs", "/v1/ingest/{sourceId}", "/v1/tenants"]);

describe("tenant isolation", () => {
  it("keeps every tenant-scoped route from reaching another tenant's data", { timeout: 60_000 }, async () => {
    const a = await tenantClient(runtime, "acme");
    const b = await tenantClient(runtime, "globex");

    // Tenant A's resources, one of each kind.
    const device = (await a.call("POST", "/v1/devices", { imsi: "208011111111111", labels: { fleet: "meters" } })).json;
    const source = (await a.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    const key = (await a.call("POST", "/v1/keys", { name: "ops", role: "operator" })).json.key;
    const stray = JSON.stringify([
      {
        type: "sim.detached",
        dedupeKey: "x1",
        occurredAt: new Date().toISOString(),
        device: { imsi: "208019999999999" },
        sourceType: "t",
        data: {},
      },
    ]);
    const ingested = await runtime.app.request(source.source.ingestPath, {
      method: "POST",
      headers: standardWebhookHeaders(source.credentials.webhookSecret, stray),
      body: stray,
    });
    const parked = (await ingested.json()) as { accepted: { id: string }[] };
    await runtime.settled();
    const policy = await a.call("POST", "/v1/policies", {
      name: "meters to broker",
      selector: { matchLabels: { fleet: "meters" } },
      destinations: [{ fqdn: "broker.acme.example", ports: [8883], protocol: "tcp" }],
      effect: "allow",
    });
    const grant = await a.call("POST", "/v1/grants", {
      principal: "vendor@example.com",
      target: { deviceId: device.id },
      destinations: [{ cidr: "10.0.0.0/8", protocol: "tcp" }],
      notBefore: new Date(Date.now() - 60_000).toISOString(),
      notAfter: new Date(Date.now() + 3_600_000).toISOString(),
      sessionRecording: true,
    });
    const rule = await a.call("POST", "/v1/automation/rules", {
      name: "contain",
      pattern: { source: ["simroot"], "detail-type": ["anomaly.detected"] },
      actions: [{ type: "quarantine" }],
    });
    const webhook = await a.call("POST", "/v1/webhooks", {
      url: "http://127.0.0.1:9/hook",
      pattern: { source: ["simroot"], "detail-type": ["none.ever"] },
    });
    const incident = await a.call("POST", "/v1/incidents", { deviceId: device.id, severity: "low" });
    // A delivery the bus gave up on (a reported fact the applier refuses).
    const refused = {
      ...domainEvent({ tenantId: a.tenant.id, actor: "source:test", requestId: "req_iso" }, "sim.attached", "imsi:2", {}, new Date()),
      origin: "ingest" as const,
    };
    await runtime.bus.publish([refused]);
    await runtime.settled();

    const ids: Record<string, string | undefined> = {
      "/v1/devices/{id}": device.id,
      "/v1/sources/{id}": source.source.id,
      "/v1/keys/{id}": key.keyId,
      "/v1/dead-letters/{id}": parked.accepted[0]!.id,
      "/v1/policies/{id}": policy.json?.id,
      "/v1/grants/{id}": grant.json?.id,
      "/v1/automation/rules/{id}": rule.json?.id,
      "/v1/webhooks/{id}": webhook.json?.id,
      "/v1/incidents/{id}": incident.json?.id,
      "/v1/bus/dead-letters/{id}": `${refused.id}~operatorEvents`,
    };
    const secrets = [
      device.id,
      source.source.id,
      key.keyId,
      parked.accepted[0]!.id,
      policy.json?.id,
      grant.json?.id,
      rule.json?.id,
      webhook.json?.id,
      incident.json?.id,
      refused.id,
      "208011111111111",
    ].filter(Boolean) as string[];

    const document = (await (await runtime.app.request("/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
    let probed = 0;
    for (const [template, operations] of Object.entries(document.paths)) {
      if (untenanted.has(template)) continue;
      for (const method of Object.keys(operations)) {
        const prefix = Object.keys(ids).find((candidate) => template.startsWith(candidate));
        const hasParameters = template.includes("{");
        if (hasParameters && !prefix) throw new Error(`isolation: no tenant-A resource known for ${template}`);
        if (hasParameters && !ids[prefix!]) continue; // the route's resource kind does not exist in this build
        const path = template.replace(prefix ?? "", prefix ? prefix.replace("{id}", ids[prefix]!) : "").replace("{action}", "revoke");
        const response = await b.call(
          method.toUpperCase(),
          path,
          method === "get" || method === "delete" ? undefined : { reason: "isolation probe" },
          {
            "if-match": '"1"',
          },
        );
        probed++;
        if (hasParameters) expect(response.status, `${method.toUpperCase()} ${path}`).toBeGreaterThanOrEqual(400);
        // An error may echo the id B sent; what B is given back must hold nothing of A's.
        if (response.status < 400) {
          for (const secret of secrets) expect(response.text, `${method.toUpperCase()} ${path} leaks ${secret}`).not.toContain(secret);
        }
      }
    }
    expect(probed).toBeGreaterThan(20);

    // A's resources are untouched by all of that.
    expect((await a.call("GET", `/v1/devices/${device.id}`)).json).toMatchObject({ state: "active", revision: 1 });
    expect((await a.call("GET", `/v1/automation/rules/${rule.json.id}`)).json).toMatchObject({ revision: 1, enabled: true });
    expect((await a.call("GET", `/v1/webhooks/${webhook.json.id}`)).json).toMatchObject({ revision: 1, enabled: true });
    expect((await a.call("GET", `/v1/incidents/${incident.json.id}`)).json.incident).toMatchObject({ status: "open" });
    expect((await a.call("GET", "/v1/dead-letters")).json.items).toHaveLength(1);
    expect((await a.call("GET", "/v1/bus/dead-letters")).json.items.map((letter: { eventId: string }) => letter.eventId)).toEqual([
      refused.id,
    ]);
    expect((await a.call("GET", "/v1/keys")).json.items.find((k: { keyId: string }) => k.keyId === key.keyId).revokedAt).toBeUndefined();
    expect((await a.call("GET", "/v1/audit/verify")).json.valid).toBe(true);
    const lookup = await b.call("GET", "/v1/devices/lookup?imsi=208011111111111");
    expect(lookup.status).toBe(404);
  });
});
