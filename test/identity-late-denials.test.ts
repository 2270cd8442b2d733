/**
 * A fact that takes access away is never stale (review 95). A device's history folds a window of its 32 latest facts;
 * one dated before the window was answered `stale` and dropped, with no write and no record, whatever it was: an
 * operator's revocation delayed behind 33 attaches and detaches (or a source stamping 33 facts a few minutes ahead, the
 * skew it is allowed) was accepted (202) and lost, and the SIM stayed active. A revocation or a hold dated before the
 * window now folds into the checkpoint (a revocation is terminal whenever it is dated; a hold stands until a later fact
 * of its side lifts it), and is audited as any change is. A late fact that gives access (an attach, a reinstatement)
 * stays stale: its place in the order is gone.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coreFact, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let sequence = 0;
const fact = (type: string, imsi: string, data: Record<string, unknown>, occurredAt: string) =>
  coreFact(type, imsi, data, occurredAt, `late-${++sequence}`);
/** Times from one instant, so that "before the window" does not drift with the test's own pace. */
const base = Date.now();
const at = (offsetMs: number) => new Date(base + offsetMs).toISOString();
const churn = (imsi: string, from: number) =>
  Array.from({ length: 33 }, (_, i) => fact(i % 2 ? "sim.detached" : "sim.attached", imsi, { bearer: "cellular" }, at(from + i * 10)));

describe("late facts that take access away (review 95)", () => {
  it("a revocation dated before the device's 32 latest facts revokes it, and is audited", async () => {
    const tenant = await tenantClient(runtime, "late-revocation");
    const report = await simrootSource(runtime, tenant);
    const imsi = "208017780000001";
    const id = (await tenant.call("POST", "/v1/devices", { imsi })).json.id;
    const revokedAt = at(-5_000);
    await report(...churn(imsi, 1_000));
    await report(fact("device.revoked", imsi, { reason: "SIM deletion" }, revokedAt));
    const device = (await tenant.call("GET", `/v1/devices/${id}`)).json;
    expect(device.state).toBe("revoked");
    const audit = (await tenant.call("GET", `/v1/audit?subject=${id}&limit=200`)).json.items.map(
      (record: { action: string }) => record.action,
    );
    expect(audit).toContain("device.revoked");
    // An attach dated after it opens no session again.
    await report(fact("sim.attached", imsi, { bearer: "cellular", ipv4: "10.78.0.1" }, at(120_000)));
    expect((await tenant.call("GET", "/v1/devices/lookup?ip=10.78.0.1")).status).not.toBe(200);
  });

  it("a hold dated before the window holds the device until its side lifts it; a late reinstatement stays stale", async () => {
    const tenant = await tenantClient(runtime, "late-hold");
    const report = await simrootSource(runtime, tenant);
    const imsi = "208017780000002";
    const id = (await tenant.call("POST", "/v1/devices", { imsi })).json.id;
    await report(...churn(imsi, 1_000));
    const suspension = fact("device.suspended", imsi, { reason: "fraud desk" }, at(-5_000));
    await report(suspension);
    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("suspended");
    // A reinstatement dated before the window gives access back out of order: stale, the hold stands.
    await report(fact("device.reinstated", imsi, { reason: "late" }, at(-4_000)));
    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("suspended");
    // One dated now lifts it.
    await report(fact("device.reinstated", imsi, { reason: "cleared" }, at(60_000)));
    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("active");
    // The late suspension delivered again, once the lift too has left the window: a duplicate, not imposed again.
    await report(...churn(imsi, 70_000));
    await report(suspension);
    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("active");
  });
});

describe("an IMEI change dated before the device's window (review 123)", () => {
  it("quarantines an IMEI-locked device whose SIM a late report shows attached in other equipment", async () => {
    const tenant = await tenantClient(runtime, "r123-late-imei");
    const report = await simrootSource(runtime, tenant);
    const imsi = "208017790000001";
    const id = (await tenant.call("POST", "/v1/devices", { imsi, imei: "490154203237518", imeiLock: true })).json.id;
    await report(...churn(imsi, 1_000));
    // The attach in the thief's equipment, delayed behind 33 later reports (or stamped before them).
    await report(fact("sim.attached", imsi, { bearer: "cellular", imei: "356938035643809" }, at(-5_000)));
    const device = (await tenant.call("GET", `/v1/devices/${id}`)).json;
    expect([device.state, device.identity.imei]).toEqual(["quarantined", "356938035643809"]);
  });

  it("quarantines an IMEI-locked device on a late NEF IMSI-IMEI association change", async () => {
    const tenant = await tenantClient(runtime, "r123-late-assoc");
    const report = await simrootSource(runtime, tenant);
    const imsi = "208017790000002";
    const id = (await tenant.call("POST", "/v1/devices", { imsi, imei: "490154203237518", imeiLock: true })).json.id;
    await report(...churn(imsi, 1_000));
    await report(fact("device.equipment-changed", imsi, { association: "IMEI" }, at(-5_000)));
    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("quarantined");
  });

  it("takes a redelivered equipment report that left the window in order for a duplicate, not a move (review 126)", async () => {
    const tenant = await tenantClient(runtime, "late-redelivery");
    const report = await simrootSource(runtime, tenant);
    const imsi = "208017790000126";
    const oldImei = "490154203237518";
    const newImei = "356938035643809";
    const id = (await tenant.call("POST", "/v1/devices", { imsi, imei: oldImei, imeiLock: true })).json.id;
    const firstAttach = fact("sim.attached", imsi, { bearer: "cellular", imei: oldImei }, at(1_000));
    await report(firstAttach);
    // The SIM moves into new equipment: quarantined; an admin checks and reinstates it there.
    await report(fact("sim.attached", imsi, { bearer: "cellular", imei: newImei }, at(2_000)));
    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("quarantined");
    expect((await tenant.call("POST", `/v1/devices/${id}/reinstate`, { reason: "new modem, checked" })).status).toBe(200);
    // Later reports push both attaches out of the window; then the source redelivers its first attach (at least once).
    await report(...churn(imsi, 10_000));
    await report(firstAttach);
    const device = (await tenant.call("GET", `/v1/devices/${id}`)).json;
    expect([device.state, device.identity.imei]).toEqual(["active", newImei]);
  });
});
