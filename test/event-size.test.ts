/**
 * Every change the API takes commits an event the bus carries: its PutEvents entry (counted as core's `entryBytes`,
 * EventBridge's own rule) within 256 KiB, EventBridge's documented bound. Review 74 found these taken, each with an event
 * of 278 to 304 KB that the outbox could only make a dead letter (no webhook, automation rule or SIEM export saw it),
 * after d473873 had capped policies, grants and the enforcement settings at 64 KiB. Each is now refused or small.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { entryBytes, eventOfRecord, listAudit, maxEntryBytes, toPutEventsEntry } from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

async function largestEntries(tenantId: string) {
  const records = (await listAudit(runtime.ports, { tenantId, actor: "test", requestId: "r" }, { limit: 100 })).items;
  return records
    .map((record) => ({ action: record.action, bytes: entryBytes(toPutEventsEntry(eventOfRecord(record), "bus", ["webhooks"])) }))
    .sort((a, b) => b.bytes - a.bytes);
}

// Distinct strings, so that nothing compresses them away anywhere on the way.
const values = (count: number, prefix: string) => Array.from({ length: count }, (_, n) => `${prefix}-${n.toString(36)}-${"x".repeat(40)}`);

describe("the largest events the API can cause (review 74)", () => {
  it("an automation rule's pattern (no bound): rule-updated carries it twice (rule and changes)", async () => {
    const tenant = await tenantClient(runtime, "big-rule");
    const pattern = { source: ["simroot"], "detail-type": ["device.revoked"], subject: values(3_000, "dev") };
    const small = { source: ["simroot"], "detail-type": ["device.revoked"] };
    const created = await tenant.call("POST", "/v1/automation/rules", { name: "big", pattern: small, actions: [{ type: "revoke" }] });
    expect(created.status).toBe(201);
    const changed = await tenant.call(
      "PATCH",
      `/v1/automation/rules/${created.json.id}`,
      { pattern },
      { "if-match": `"${created.json.revision}"` },
    );
    // Refused (400), or taken with an event the bus carries.
    expect([200, 400]).toContain(changed.status);
    const largest = await largestEntries(tenant.tenant.id);
    expect(largest[0]!.bytes).toBeLessThanOrEqual(maxEntryBytes);
  });

  it("a webhook subscription's pattern (no bound)", async () => {
    const tenant = await tenantClient(runtime, "big-webhook");
    const pattern = { source: ["simroot"], subject: values(5_500, "dev") };
    const created = await tenant.call("POST", "/v1/webhooks", { url: "https://hooks.example.com/in", pattern });
    expect([201, 400]).toContain(created.status);
    const largest = await largestEntries(tenant.tenant.id);
    expect(largest[0]!.bytes).toBeLessThanOrEqual(maxEntryBytes);
  });

  it("the tenant settings' country rules (50 selectors, values unbounded)", async () => {
    const tenant = await tenantClient(runtime, "big-settings");
    const countryRules = Array.from({ length: 50 }, (_, rule) => ({
      selector: { matchExpressions: [{ key: "site", operator: "In", values: values(110, `s${rule}`) }] },
      allowedCountries: ["FR"],
    }));
    const current = await tenant.call("GET", "/v1/tenant");
    const changed = await tenant.call("PATCH", "/v1/tenant/settings", { countryRules }, { "if-match": current.headers.get("etag")! });
    expect([200, 400]).toContain(changed.status);
    const largest = await largestEntries(tenant.tenant.id);
    expect(largest[0]!.bytes).toBeLessThanOrEqual(maxEntryBytes);
  });

  it("an automation rule's start-grant destinations (ports unbounded): small pattern, rule-updated over 256 KiB", async () => {
    const tenant = await tenantClient(runtime, "big-rule-ports");
    const small = { source: ["simroot"], "detail-type": ["device.revoked"] };
    const created = await tenant.call("POST", "/v1/automation/rules", { name: "ports", pattern: small, actions: [{ type: "revoke" }] });
    expect(created.status).toBe(201);
    const ports = Array.from({ length: 2_500 }, (_, n) => 10_000 + n);
    const grant = (n: number) => ({
      type: "start-grant",
      principal: `vendor:${n}`,
      minutes: 60,
      destinations: [{ fqdn: `support-${n}.example.com`, ports, protocol: "tcp" }],
    });
    const changed = await tenant.call(
      "PATCH",
      `/v1/automation/rules/${created.json.id}`,
      { actions: Array.from({ length: 10 }, (_, n) => grant(n)) },
      { "if-match": `"${created.json.revision}"` },
    );
    expect([200, 400]).toContain(changed.status);
    const largest = await largestEntries(tenant.tenant.id);
    expect(largest[0]!.bytes).toBeLessThanOrEqual(maxEntryBytes);
  });
});
