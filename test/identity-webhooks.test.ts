/** Standard Webhooks `webhook-id` deduplication per source, within (and beyond) the replay window. */
import type { Schema } from "@simroot/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const imsi = "208016660000001";
const fact = (dedupeKey: string, type: string, data: Record<string, unknown>) => ({
  type,
  dedupeKey,
  occurredAt: new Date(Date.now() - 60_000).toISOString(),
  device: { imsi },
  sourceType: type,
  data,
});

async function setup() {
  const tenant = await tenantClient(runtime);
  const source = async () => (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
  const post = async <Body = unknown>(
    created: { source: { ingestPath: string }; credentials: { webhookSecret: string } },
    webhookId: string,
    body: unknown,
  ) => {
    const text = JSON.stringify(body);
    const response = await runtime.app.request(created.source.ingestPath, {
      method: "POST",
      headers: standardWebhookHeaders(created.credentials.webhookSecret, text, webhookId),
      body: text,
    });
    await runtime.settled();
    return { status: response.status, json: (await response.json()) as Body };
  };
  const device = (await tenant.call("POST", "/v1/devices", { imsi })).json;
  const state = async () => (await tenant.call("GET", `/v1/devices/${device.id}`)).json;
  return { tenant, source, post, state };
}

describe("webhook-id deduplication", () => {
  it("refuses the same webhook-id with another, validly signed body, and applies nothing of it", async () => {
    const { source, post, state } = await setup();
    const core = await source();
    expect((await post(core, "msg_same", [fact("a", "device.reachability-changed", { reachable: true })])).status).toBe(202);
    const replay = await post<Schema<"Problem">>(core, "msg_same", [fact("b", "device.revoked", { reason: "forged" })]);
    expect(replay.status).toBe(409);
    expect(replay.json.type).toBe("urn:simroot:problem:ingest.webhook_id_reused");
    expect((await state()).state).toBe("active");
  });

  it("answers a redelivery (same id, same body) as the first time and publishes nothing again", async () => {
    const { source, post } = await setup();
    const core = await source();
    const body = [fact("c", "device.reachability-changed", { reachable: false })];
    const first = await post(core, "msg_again", body);
    const again = await post(core, "msg_again", body);
    expect(again.status).toBe(202);
    expect(again.json).toEqual(first.json);
  });

  it("keeps webhook-ids apart per source", async () => {
    const { source, post } = await setup();
    const [one, two] = [await source(), await source()];
    expect((await post(one, "msg_shared", [fact("d", "device.reachability-changed", { reachable: true })])).status).toBe(202);
    expect((await post(two, "msg_shared", [fact("e", "device.reachability-changed", { reachable: false })])).status).toBe(202);
  });
});
