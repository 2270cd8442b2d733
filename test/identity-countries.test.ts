/** Allowed countries per device or per label selector, with the tenant's list as the default. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let sequence = 0;
const roamingInto = (imsi: string, mcc: string) => ({
  type: "device.roaming-changed",
  dedupeKey: `country-${++sequence}`,
  occurredAt: new Date(Date.now() - 60_000).toISOString(),
  device: { imsi },
  sourceType: "test",
  data: { roaming: true, mcc },
});

describe("allowed countries", () => {
  it("takes a device's own list, else the first label-selector rule that matches it, else the tenant's", async () => {
    const tenant = await tenantClient(runtime);
    const current = (await tenant.call("GET", "/v1/tenant")).json;
    const updated = await tenant.call(
      "PATCH",
      "/v1/tenant/settings",
      { allowedCountries: ["FR"], countryRules: [{ selector: { matchLabels: { market: "us" } }, allowedCountries: ["US"] }] },
      { "if-match": `"${current.revision}"` },
    );
    expect(updated.status).toBe(200);
    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    const devices = {
      own: (await tenant.call("POST", "/v1/devices", { imsi: "208019990000101", labels: { market: "us" }, allowedCountries: ["DE"] })).json,
      rule: (await tenant.call("POST", "/v1/devices", { imsi: "208019990000102", labels: { market: "us" } })).json,
      tenant: (await tenant.call("POST", "/v1/devices", { imsi: "208019990000103", labels: { market: "eu" } })).json,
    };
    const allowedIn = async (device: { id: string; imsi: string }, mcc: string) => {
      const text = JSON.stringify([roamingInto(device.imsi, mcc)]);
      await runtime.app.request(source.ingestPath, {
        method: "POST",
        headers: standardWebhookHeaders(credentials.webhookSecret, text),
        body: text,
      });
      await runtime.settled();
      const timeline = (await tenant.call("GET", `/v1/devices/${device.id}/timeline`)).json.items;
      return timeline.filter((entry: { type: string }) => entry.type === "device.roaming-changed").at(-1).data.allowed;
    };
    expect(await allowedIn(devices.own, "262")).toBe(true); // DE, its own list
    expect(await allowedIn(devices.own, "310")).toBe(false); // US: the rule does not apply to it
    expect(await allowedIn(devices.rule, "310")).toBe(true); // US, by its label
    expect(await allowedIn(devices.rule, "208")).toBe(false); // FR is the tenant default, not the rule's
    expect(await allowedIn(devices.tenant, "208")).toBe(true); // the tenant default
    expect(await allowedIn(devices.tenant, "310")).toBe(false);
  });
});
