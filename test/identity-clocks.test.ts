import type { Schema } from "@simroot/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let sequence = 0;
const fact = (type: string, data: Record<string, unknown>, occurredAt: string, imsi: string) => ({
  type,
  dedupeKey: `clock-${++sequence}`,
  occurredAt,
  device: { imsi },
  sourceType: type,
  data,
});

async function setup(imsi: string) {
  const tenant = await tenantClient(runtime);
  const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "skewed core", format: "simroot" })).json;
  const post = async (body: unknown) => {
    const text = JSON.stringify(body);
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: standardWebhookHeaders(credentials.webhookSecret, text),
      body: text,
    });
    await runtime.settled();
    return { status: response.status, json: (await response.json()) as Schema<"IngestResult"> };
  };
  const device = (await tenant.call("POST", "/v1/devices", { imsi })).json;
  return { tenant, post, device };
}

describe("bounded clocks: a report dated in the future cannot freeze a device", () => {
  it("clamps a fact dated 9999-12-31 to the receive time, says so, and an admin's quarantine still applies", async () => {
    const imsi = "208015550000001";
    const { tenant, post, device } = await setup(imsi);
    const result = await post([fact("device.reinstated", { reason: "SIM activation" }, "9999-12-31T23:59:59.000Z", imsi)]);
    expect(result.status).toBe(202);
    expect(result.json.accepted[0]).toMatchObject({ clampedFrom: "9999-12-31T23:59:59.000Z" });
    const quarantined = await tenant.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "investigating" });
    expect(quarantined.status).toBe(200);
    expect(quarantined.json).toMatchObject({ outcome: "applied", device: { state: "quarantined" } });
    const reinstated = await tenant.call("POST", `/v1/devices/${device.id}/reinstate`, { reason: "cleared" });
    expect(reinstated.json).toMatchObject({ outcome: "applied", device: { state: "active" } });
  });

  it("an operator's quarantine reported after a report stamped an hour ahead takes effect", async () => {
    const imsi = "208015550000002";
    const { tenant, post, device } = await setup(imsi);
    const hourAhead = new Date(Date.now() + 3_600_000).toISOString();
    await post([fact("device.reinstated", { reason: "SIM activation" }, hourAhead, imsi)]);
    await post([fact("device.quarantined", { reason: "fraud desk" }, new Date(Date.now() + 1000).toISOString(), imsi)]);
    const now = (await tenant.call("GET", `/v1/devices/${device.id}`)).json;
    expect(now.state).toBe("quarantined");
  });

  it("an admin action is never stale, even after a report within the allowed skew", async () => {
    const imsi = "208015550000003";
    const { tenant, post, device } = await setup(imsi);
    await post([fact("device.reinstated", { reason: "SIM activation" }, new Date(Date.now() + 120_000).toISOString(), imsi)]);
    const suspended = await tenant.call("POST", `/v1/devices/${device.id}/suspend`, { reason: "unpaid" });
    expect(suspended.json).toMatchObject({ outcome: "applied", device: { state: "suspended" } });
  });
});
