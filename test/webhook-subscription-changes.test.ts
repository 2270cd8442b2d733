/**
 * A pending delivery is attempted under the subscription as it is at the attempt (review 130): its role (review 87) and
 * what it asks for. Queued because its pattern matched, a retry of an event the integrator unsubscribed from since went
 * to its new URL, signed, for up to 82 hours of retries; a replay too. A rule's `notify` names the subscription whatever
 * its pattern says, and is sent as before.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attemptDelivery, dispatchToWebhooks, enqueueDelivery, type Ports } from "@simroot/core";
import { startHttpCollector, type HttpCollector } from "../packages/core/src/integration/http-collector.test-support.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { quarantinedEnvelope } from "./support/webhooks.ts";

let runtime: TestRuntime;
/** The receiver: `/fail` answers 500, `/gone` 410, any other path 200. */
let receiver: HttpCollector;
let base: string;
beforeAll(async () => {
  runtime = await startTestRuntime({ webhookWorkerMs: 0 });
  receiver = await startHttpCollector(({ path }) => ({ status: path === "/fail" ? 500 : path === "/gone" ? 410 : 200 }));
  base = receiver.url;
});
afterAll(async () => {
  await receiver.close();
  await runtime.stop();
});

/** The paths a delivery was sent to, in order. */
const sentTo = (id: string) => receiver.requests.filter((request) => request.headers["webhook-id"] === id).map((request) => request.path);

const later = (ms: number) => ({ ...runtime.ports, now: () => new Date(Date.now() + ms) });

/** A subscription to quarantines whose receiver fails, then moved to `/ok` and to reinstatements only. */
async function resubscribed(name: string, queue: (tenantId: string, webhookId: string) => Promise<string>) {
  const tenant = await tenantClient(runtime, name);
  const created = await tenant.call("POST", "/v1/webhooks", { url: `${base}/fail`, pattern: { "detail-type": ["device.quarantined"] } });
  expect(created.status, created.text).toBe(201);
  const id = await queue(tenant.tenant.id, created.json.id);
  expect(sentTo(id)).toEqual(["/fail"]);
  const changed = await tenant.call(
    "PATCH",
    `/v1/webhooks/${created.json.id}`,
    { url: `${base}/ok`, pattern: { "detail-type": ["device.reinstated"] } },
    { "if-match": '"1"' },
  );
  expect(changed.status, changed.text).toBe(200);
  return { tenant, webhookId: created.json.id as string, id };
}

describe("a pending delivery after its subscription changed", { timeout: 60_000 }, () => {
  it("is not sent once the subscription's pattern no longer matches its event, and says why", async () => {
    const { tenant, webhookId, id } = await resubscribed("changed-pattern", async (tenantId) => {
      const [id] = await dispatchToWebhooks(runtime.ports, quarantinedEnvelope(tenantId, "evt_changed_pattern"), { timeoutMs: 3_000 });
      return id!;
    });
    expect(await attemptDelivery(later(60_000), tenant.tenant.id, webhookId, id)).toBe("failed");
    expect(sentTo(id)).toEqual(["/fail"]);
    const deliveries = (await tenant.call("GET", `/v1/webhooks/${webhookId}/deliveries`)).json.items as { id: string; status: string }[];
    expect(deliveries.find((delivery) => delivery.id === id)).toMatchObject({ status: "failed" });
    expect(JSON.stringify(deliveries)).toContain("no longer matches");
  });

  it("is sent when a rule's notify queued it, which names the subscription whatever its pattern", async () => {
    const { tenant, webhookId, id } = await resubscribed("changed-pattern-notify", async (tenantId, webhookId) => {
      const id = (await enqueueDelivery(runtime.ports, tenantId, webhookId, quarantinedEnvelope(tenantId, "evt_changed_notify")))!;
      expect(await attemptDelivery(runtime.ports, tenantId, webhookId, id)).toBe("pending");
      return id;
    });
    expect(await attemptDelivery(later(60_000), tenant.tenant.id, webhookId, id)).toBe("delivered");
    expect(sentTo(id)).toEqual(["/fail", "/ok"]);
  });
});

describe("a receiver answering 410 Gone", { timeout: 60_000 }, () => {
  it("disables its subscription though another change of it lands between the attempt's read and the disable", async () => {
    const tenant = await tenantClient(runtime, "gone-raced");
    const created = await tenant.call("POST", "/v1/webhooks", { url: `${base}/gone`, pattern: { "detail-type": ["device.quarantined"] } });
    expect(created.status, created.text).toBe(201);
    const webhookId = created.json.id as string;
    const id = (await enqueueDelivery(
      runtime.ports,
      tenant.tenant.id,
      webhookId,
      quarantinedEnvelope(tenant.tenant.id, "evt_gone_raced"),
    ))!;
    // An admin rotates the secret while the attempt is on its way: right after the attempt read the subscription.
    let rotated = false;
    const db = {
      send: async (command: { constructor: { name: string }; input: { Key?: { sk?: string } } }) => {
        const answer = await runtime.ports.db.send(command as never);
        if (!rotated && command.constructor.name === "GetCommand" && String(command.input.Key?.sk).includes(webhookId)) {
          rotated = true;
          const rotation = await tenant.call("POST", `/v1/webhooks/${webhookId}/rotate-secret`, {});
          expect(rotation.status, rotation.text).toBe(200);
        }
        return answer;
      },
    } as unknown as Ports["db"];
    expect(await attemptDelivery({ ...runtime.ports, db }, tenant.tenant.id, webhookId, id)).toBe("failed");
    expect(rotated).toBe(true);
    const webhook = (await tenant.call("GET", `/v1/webhooks/${webhookId}`)).json;
    expect(webhook).toMatchObject({ enabled: false, disabledReason: expect.stringContaining("410 Gone") });
  });
});
