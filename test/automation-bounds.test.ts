/**
 * What one event may cost through a tenant's automation rules (review 84): the chain of rules an action's events carry
 * bounds its depth; these bound its width.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Schema } from "@simroot/sdk";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let tenants = 0;
async function tenantWithDevice() {
  const tenant = await tenantClient(runtime, `bounds-${++tenants}`);
  const device = await tenant.call("POST", "/v1/devices", { name: "meter", imsi: `23410000001${String(tenants).padStart(4, "0")}` });
  expect(device.status, device.text).toBe(201);
  return { tenant, deviceId: device.json.id as string };
}

const firings = async (tenant: Awaited<ReturnType<typeof tenantClient>>, subject: string) =>
  ((await tenant.call("GET", `/v1/audit?subject=${subject}&limit=1000`)).json.items as Schema<"AuditRecord">[]).filter(
    (record) => record.action === "automation.fired",
  );

describe("a rule's firing record is no change to act on", { timeout: 120_000 }, () => {
  it("one change fires each matching rule once, whatever else the rules match: their firing records start no firings", async () => {
    const { tenant, deviceId } = await tenantWithDevice();
    // Four rules that would act on nothing (dry runs) but match their own kind's records: each firing recorded
    // `automation.fired` as the rule, which the three others then fired on, and so on down the chain (4 + 12 + 24 +
    // 24 = 64 records for one change; with a tenant's 100 rules, about 94 million). Neither dry-run nor the rules' rate
    // limits held it: a rate-limited firing is recorded too.
    for (let n = 0; n < 4; n++) {
      const rule = await tenant.call("POST", "/v1/automation/rules", {
        name: `watch ${n}`,
        pattern: { source: ["simroot"], "detail-type": ["device.updated", "automation.fired"] },
        actions: [{ type: "add-labels", labels: { watched: "yes" } }],
        dryRun: true,
      });
      expect(rule.status, rule.text).toBe(201);
    }
    const device = await tenant.call("GET", `/v1/devices/${deviceId}`);
    const renamed = await tenant.call("PATCH", `/v1/devices/${deviceId}`, { name: "renamed" }, { "if-match": device.headers.get("etag")! });
    expect(renamed.status, renamed.text).toBe(200);
    await runtime.settled();
    const fired = await firings(tenant, deviceId);
    expect(fired.map((record) => record.actor.split(">").length)).toEqual([1, 1, 1, 1]);
    // A rule for firing records alone would never fire: refused (a webhook subscription receives them).
    const recordsOnly = await tenant.call("POST", "/v1/automation/rules", {
      name: "firings",
      pattern: { source: ["simroot"], "detail-type": ["automation.fired"] },
      actions: [{ type: "quarantine" }],
    });
    expect([recordsOnly.status, recordsOnly.json.errors?.[0]?.path]).toEqual([400, "pattern.detail-type"]);
  });
});
