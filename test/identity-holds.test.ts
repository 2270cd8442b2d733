/**
 * Who may lift a hold (review 58): a quarantine or suspension simroot imposed (an admin, an automation rule, the IMEI
 * lock) is lifted only by simroot (an admin's or a rule's reinstatement), never by an operator's report; an operator's
 * suspension is lifted by the operator's reinstatement, or by simroot's (review 60). With both, the stricter holds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coreFact, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let sequence = 0;
// Dated after the admin's action before it (a sender's clock may run ahead, within the allowed skew).
const fact = (type: string, imsi: string, data: Record<string, unknown>) =>
  coreFact(type, imsi, data, new Date(Date.now() + 2_000).toISOString(), `hold-${++sequence}`);

async function setup(imsi: string, registration: Record<string, unknown> = {}) {
  const tenant = await tenantClient(runtime);
  const report = await simrootSource(runtime, tenant);
  const id = (await tenant.call("POST", "/v1/devices", { imsi, ...registration })).json.id as string;
  const state = async () => (await tenant.call("GET", `/v1/devices/${id}`)).json.state as string;
  const act = async (action: string) => {
    const answer = await tenant.call("POST", `/v1/devices/${id}/${action}`, { reason: `admin: ${action}` });
    expect(answer.status, answer.text).toBe(200);
  };
  return { report, state, act, tenant, id };
}

describe("holds", () => {
  it("keeps an admin's quarantine when the operator reports the SIM active again", async () => {
    const { report, state, act } = await setup("208019990000001");
    await act("quarantine");
    await report(fact("device.reinstated", "208019990000001", { reason: "SIM activation" }));
    expect(await state()).toBe("quarantined");
    await act("reinstate");
    expect(await state()).toBe("active");
  });

  it("keeps the IMEI lock's quarantine when the operator reports the SIM active again", async () => {
    const { report, state } = await setup("208019990000002", { imei: "490154203237518", imeiLock: true });
    await report(fact("sim.attached", "208019990000002", { bearer: "cellular", imei: "356938035643809" }));
    expect(await state()).toBe("quarantined");
    await report(fact("device.reinstated", "208019990000002", { reason: "SIM activation" }));
    expect(await state()).toBe("quarantined");
  });

  it("lets the operator lift its own suspension, and holds the device by the stricter of the two holds", async () => {
    const { report, state, act } = await setup("208019990000003");
    await report(fact("device.suspended", "208019990000003", { reason: "unpaid" }));
    expect(await state()).toBe("suspended");
    await report(fact("device.reinstated", "208019990000003", { reason: "paid" }));
    expect(await state()).toBe("active");
    await act("quarantine");
    await report(fact("device.suspended", "208019990000003", { reason: "unpaid again" }));
    expect(await state()).toBe("suspended");
    await report(fact("device.reinstated", "208019990000003", { reason: "paid again" }));
    expect(await state()).toBe("quarantined");
    await act("reinstate");
    expect(await state()).toBe("active");
  });

  it("lets simroot's reinstatement lift the operator's hold too (review 60: a CAMARA SIM-swap suspension, which no report lifts, held for good)", async () => {
    const { report, state, act } = await setup("208019990000004");
    await report(fact("device.suspended", "208019990000004", { reason: "sim swap reported by operator" }));
    expect(await state()).toBe("suspended");
    await act("reinstate");
    expect(await state()).toBe("active");
  });

  it("lets a source lift only its own hold: another source's report of the SIM active again lifts nothing (review 95)", async () => {
    // Every source was one "operator" side: a CAMARA source's SIM-swap suspension, which waits for a person, was lifted by
    // a Data Streamer's "SIM activation" for the same SIM (or any source of the tenant reporting a reinstatement).
    const imsi = "208019990000010";
    const { report: first, state, act, tenant } = await setup(imsi);
    const second = await simrootSource(runtime, tenant);
    await first(fact("device.suspended", imsi, { reason: "SIM swap reported" }));
    expect(await state()).toBe("suspended");
    await second(fact("device.reinstated", imsi, { reason: "SIM activation" }));
    expect(await state()).toBe("suspended");
    // Its own source lifts it; so does simroot (an admin, a rule).
    await first(fact("device.reinstated", imsi, { reason: "swap confirmed" }));
    expect(await state()).toBe("active");
    await second(fact("device.suspended", imsi, { reason: "unpaid" }));
    expect(await state()).toBe("suspended");
    await act("reinstate");
    expect(await state()).toBe("active");
  });

  it("lifts with an admin's reinstatement only the holds it knew of: a report arriving after it, dated before, holds (review 95)", async () => {
    // The reinstatement is dated after every fact known when it is taken. An attach in other equipment, reported after
    // it and dated before it, folded before it: its quarantine was lifted by it, and the new IMEI learned, unseen.
    const imsi = "208019990000011";
    const { report, state, act, tenant, id } = await setup(imsi, { imei: "490154203237518", imeiLock: true });
    await act("quarantine");
    await act("reinstate");
    expect(await state()).toBe("active");
    const attach = fact("sim.attached", imsi, { bearer: "cellular", imei: "356938035643809" });
    await report({ ...attach, occurredAt: new Date(Date.now() - 60_000).toISOString() });
    const { identity } = (await tenant.call("GET", `/v1/devices/${id}`)).json;
    expect([identity.state, identity.stateReason]).toEqual(["quarantined", "IMEI changed from 490154203237518 to 356938035643809"]);
    // Reinstated again, knowing it, the device is active in its new equipment.
    await act("reinstate");
    expect(await state()).toBe("active");
  });
});
