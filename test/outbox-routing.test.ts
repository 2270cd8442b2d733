/**
 * The outbox names the opt-in consumers (webhooks, automation) in an event's `resources` only
 * when its tenant has a subscription or a rule: their rules match on it, so a tenant without
 * either costs no invocation of them. A tenant's first subscription or rule routes every event
 * committed after it.
 */
import { DeleteCommand, GetCommand } from "@aws-sdk/lib-dynamodb";
import { consumerResource, interestsKey, type DomainEvent, type PublishOptions } from "@simroot/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
const routed = new Map<string, readonly string[]>();
beforeAll(async () => {
  runtime = await startTestRuntime();
  const publish = runtime.bus.publish.bind(runtime.bus);
  runtime.bus.publish = async (events: readonly DomainEvent[], options?: PublishOptions) => {
    for (const event of events) routed.set(event.id, options?.resources?.(event) ?? []);
    return publish(events, options);
  };
});
afterAll(() => runtime.stop());

type Tenant = Awaited<ReturnType<typeof tenantClient>>;
let imsi = 208019990000000;
/** Registers a device and answers the resources its `device.registered` event was published with. */
async function routingOfNextEvent(tenant: Tenant) {
  const device = (await tenant.call("POST", "/v1/devices", { imsi: String(++imsi) })).json;
  await runtime.settled();
  const audit = (await tenant.call("GET", `/v1/audit?subject=${device.id}`)).json.items;
  const eventId = audit.find((record: { action: string }) => record.action === "device.registered").eventId;
  expect(routed.has(eventId)).toBe(true);
  return [...routed.get(eventId)!].sort();
}

const webhooks = consumerResource("webhooks");
const automation = consumerResource("automation");
const subscribe = (tenant: Tenant) =>
  tenant.call("POST", "/v1/webhooks", { url: "http://127.0.0.1:9/hook", pattern: { source: ["simroot"], "detail-type": ["none.ever"] } });

describe("routing to opt-in consumers", () => {
  it("names webhooks and automation only once the tenant has a subscription, a rule", async () => {
    const tenant = await tenantClient(runtime, "routing");
    const other = await tenantClient(runtime, "routing-other");
    expect(await routingOfNextEvent(tenant)).toEqual([]);
    expect((await subscribe(tenant)).status).toBe(201);
    expect(await routingOfNextEvent(tenant)).toEqual([webhooks]);
    const rule = await tenant.call("POST", "/v1/automation/rules", {
      name: "contain",
      pattern: { source: ["simroot"], "detail-type": ["anomaly.detected"] },
      actions: [{ type: "quarantine" }],
    });
    expect(rule.status).toBe(201);
    expect(await routingOfNextEvent(tenant)).toEqual([automation, webhooks].sort());
    // Another tenant's events are not routed by this one's interests.
    expect(await routingOfNextEvent(other)).toEqual([]);
  });

  it("finds the subscriptions of a tenant it has no mark for (made before marks existed), and writes the mark once", async () => {
    const tenant = await tenantClient(runtime, "routing-before");
    expect((await subscribe(tenant)).status).toBe(201);
    await runtime.settled();
    const key = interestsKey(tenant.tenant.id);
    await runtime.ports.db.send(new DeleteCommand({ TableName: runtime.ports.tables.automation, Key: key }));
    expect(await routingOfNextEvent(tenant)).toEqual([webhooks]);
    const { Item } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.automation, Key: key, ConsistentRead: true }),
    );
    expect(Item).toMatchObject({ webhook: true, rule: false });
  });

  it("still finds an older rule when the tenant's first new subscription made the mark (naming webhooks only)", async () => {
    const tenant = await tenantClient(runtime, "routing-mixed");
    const rule = await tenant.call("POST", "/v1/automation/rules", {
      name: "contain",
      pattern: { source: ["simroot"], "detail-type": ["anomaly.detected"] },
      actions: [{ type: "quarantine" }],
    });
    expect(rule.status).toBe(201);
    await runtime.settled();
    // As before marks existed: the rule is there, the mark is not; then a subscription's commit makes one.
    await runtime.ports.db.send(new DeleteCommand({ TableName: runtime.ports.tables.automation, Key: interestsKey(tenant.tenant.id) }));
    expect((await subscribe(tenant)).status).toBe(201);
    expect(await routingOfNextEvent(tenant)).toEqual([automation, webhooks].sort());
  });
});
