/**
 * Facts accepted before review 83 bounded a fact's text (a stated time to 35 characters, a device id to 64) may still
 * be on the bus, waiting to be retried or redriven, or parked until their device is registered. The applier parsed them
 * with the new bounds and refused them as malformed: each became a dead letter and was never applied, although
 * ingestion had answered 202 (review 89). They are facts as the ingestion of that time published them, built here as it
 * built them.
 */
import { ingestedEvent, type NormalizedEvent } from "@simroot/core";
import { park } from "@simroot/core/ingest/parked";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

/** 21 digits of a second: 47 characters, accepted before review 83 (the catalogue bounded no fraction). */
const longTime = "2026-11-22T06:01:00.123456789012345678901+01:00";

/** An attach of `device` as ingestion published it before review 83. */
function acceptedEarlier(tenantId: string, device: Record<string, string>, ipv4: string, dedupeKey: string) {
  const event = {
    type: "sim.attached",
    dedupeKey,
    occurredAt: longTime,
    device,
    sourceType: "attach",
    data: { bearer: "cellular", ipv4 },
  } as unknown as NormalizedEvent;
  return ingestedEvent({ tenantId, actor: "source:src_old", requestId: "req_old" }, "src_old", "simroot", event, new Date());
}

describe("facts accepted before review 83's text bounds", () => {
  it("a queued fact stating a time of 47 characters applies; nothing is dead-lettered", async () => {
    const tenant = await tenantClient(runtime, "earlier-queued");
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208013330000001" })).json;
    await runtime.bus.publish([acceptedEarlier(tenant.tenant.id, { imsi: "208013330000001" }, "10.33.0.1", "old-1")]);
    await runtime.settled();

    expect((await tenant.call("GET", "/v1/bus/dead-letters")).json.items).toEqual([]);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toMatchObject({ ipv4: "10.33.0.1" });
  });

  it("a parked one applies when its device is registered", async () => {
    const tenant = await tenantClient(runtime, "earlier-parked");
    const fact = acceptedEarlier(tenant.tenant.id, { imsi: "208013330000002" }, "10.33.0.2", "old-2");
    // Parked as the applier of that time parked it.
    await park(runtime.ports, fact, "no device in this tenant matches imsi:208013330000002");
    expect((await tenant.call("GET", "/v1/dead-letters")).json.items).toHaveLength(1);

    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208013330000002" })).json;
    await runtime.settled();
    expect((await tenant.call("GET", "/v1/bus/dead-letters")).json.items).toEqual([]);
    expect((await tenant.call("GET", "/v1/dead-letters")).json.items).toEqual([]);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toMatchObject({ ipv4: "10.33.0.2" });
  });

  it("one naming a device id of 100 characters (no device has one) is parked with its reason, not dead-lettered", async () => {
    const tenant = await tenantClient(runtime, "earlier-device-id");
    const fact = acceptedEarlier(tenant.tenant.id, { deviceId: `dev_${"X".repeat(96)}` }, "10.33.0.3", "old-3");
    await runtime.bus.publish([fact]);
    await runtime.settled();

    expect((await tenant.call("GET", "/v1/bus/dead-letters")).json.items).toEqual([]);
    const parked = (await tenant.call("GET", "/v1/dead-letters")).json.items;
    expect(parked).toEqual([expect.objectContaining({ id: fact.id, reason: expect.stringContaining("100 characters") })]);
  });
});
