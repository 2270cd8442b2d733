/**
 * History that does not depend on delivery order: a session whose end commits before its
 * start still reaches the audit trail and the timeline, and "who held this IP at that time?"
 * is answered either way.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let sequence = 0;
const base = Date.now() - 3_600_000;
const at = (minute: number) => new Date(base + minute * 60_000).toISOString();
const fact = (type: string, imsi: string, data: Record<string, unknown>, minute: number) => ({
  type,
  dedupeKey: `history-${++sequence}`,
  occurredAt: at(minute),
  device: { imsi },
  sourceType: type,
  data,
});

async function setup() {
  const tenant = await tenantClient(runtime);
  const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
  const post = async (...facts: unknown[]) => {
    for (const one of facts) {
      const text = JSON.stringify([one]);
      const response = await runtime.app.request(source.ingestPath, {
        method: "POST",
        headers: standardWebhookHeaders(credentials.webhookSecret, text),
        body: text,
      });
      expect(response.status).toBe(202);
      await runtime.settled();
    }
  };
  const lookup = async (ip: string, minute: number) => {
    const response = await tenant.call("GET", `/v1/devices/lookup?ip=${ip}&at=${encodeURIComponent(at(minute))}`);
    return response.status === 200 ? response.json.id : response.status;
  };
  return { tenant, post, lookup };
}

describe("history independent of delivery order", () => {
  it("records a session whose end arrived before its start, on the timeline and in the audit trail", async () => {
    const { tenant, post } = await setup();
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011110000001" })).json;
    await post(
      fact("sim.detached", "208011110000001", { bearer: "cellular" }, 20),
      fact("sim.attached", "208011110000001", { bearer: "cellular", ipv4: "10.46.1.22" }, 10),
    );
    const timeline = (await tenant.call("GET", `/v1/devices/${device.id}/timeline`)).json.items;
    const session = timeline.find((entry: { type: string }) => entry.type === "sim.session-recorded");
    expect(session?.data).toMatchObject({ ipv4: "10.46.1.22", since: at(10), until: at(20) });
    const audit = (await tenant.call("GET", `/v1/audit?subject=${device.id}`)).json.items;
    expect(audit.map((record: { action: string }) => record.action)).toContain("sim.session-recorded");
  });

  it("answers who held an IP at a time, whatever order the sessions arrived in", async () => {
    const { tenant, post, lookup } = await setup();
    const first = (await tenant.call("POST", "/v1/devices", { imsi: "208011110000002" })).json;
    const second = (await tenant.call("POST", "/v1/devices", { imsi: "208011110000003" })).json;
    await post(
      fact("sim.detached", "208011110000002", { bearer: "cellular" }, 30), // the first device's end arrives first
      fact("sim.attached", "208011110000003", { bearer: "cellular", ipv4: "10.46.1.23" }, 40),
      fact("sim.attached", "208011110000002", { bearer: "cellular", ipv4: "10.46.1.23" }, 10),
    );
    expect(await lookup("10.46.1.23", 5)).toBe(404);
    expect(await lookup("10.46.1.23", 15)).toBe(first.id);
    expect(await lookup("10.46.1.23", 35)).toBe(404);
    expect(await lookup("10.46.1.23", 45)).toBe(second.id);
  });
});
