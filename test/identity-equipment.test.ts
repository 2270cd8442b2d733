/**
 * Review 123: the SIM's bindings to its equipment (the IMEI lock) and to its eUICC, as an attacker or a confused
 * operator exercises them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coreFact, eimJsonSource, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let sequence = 0;
const fact = (type: string, imsi: string, data: Record<string, unknown>, occurredAt: string) =>
  coreFact(type, imsi, data, occurredAt, `r123-${++sequence}`);
const base = Date.now();
const at = (offsetMs: number) => new Date(base + offsetMs).toISOString();

describe("turning the IMEI lock off (review 123)", () => {
  it("does not lift the quarantine the lock imposed: only a reinstatement does", async () => {
    const tenant = await tenantClient(runtime, "r123-lock-off");
    const report = await simrootSource(runtime, tenant);
    const imsi = "208017790000003";
    const id = (await tenant.call("POST", "/v1/devices", { imsi, imei: "490154203237518", imeiLock: true })).json.id;
    await report(fact("sim.attached", imsi, { bearer: "cellular", imei: "356938035643809" }, at(1_000)));
    const quarantined = await tenant.call("GET", `/v1/devices/${id}`);
    expect(quarantined.json.state).toBe("quarantined");
    // The operator stops locking this device from now on (say, before moving it to new modems)...
    const patched = await tenant.call("PATCH", `/v1/devices/${id}`, { imeiLock: false }, { "if-match": quarantined.headers.get("etag")! });
    expect(patched.status, patched.text).toBe(200);
    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("quarantined");
    // ...and the thief's equipment's next roaming report, which names no equipment, must not free it.
    await report(fact("device.roaming-changed", imsi, { roaming: true, mcc: "262" }, at(2_000)));
    const device = (await tenant.call("GET", `/v1/devices/${id}`)).json;
    expect([device.state, device.identity.stateReason]).toEqual(["quarantined", "IMEI changed from 490154203237518 to 356938035643809"]);
  });
  it("does not quarantine, once the lock is switched on, for an equipment change it let pass while off", async () => {
    const tenant = await tenantClient(runtime, "r123-lock-on");
    const report = await simrootSource(runtime, tenant);
    const imsi = "208017790000004";
    const id = (await tenant.call("POST", "/v1/devices", { imsi, imei: "490154203237518", imeiLock: false })).json.id;
    await report(fact("sim.attached", imsi, { bearer: "cellular", imei: "356938035643809" }, at(1_000)));
    const moved = await tenant.call("GET", `/v1/devices/${id}`);
    expect([moved.json.state, moved.json.identity.imei]).toEqual(["active", "356938035643809"]);
    const patched = await tenant.call("PATCH", `/v1/devices/${id}`, { imeiLock: true }, { "if-match": moved.headers.get("etag")! });
    expect(patched.status, patched.text).toBe(200);
    await report(fact("device.roaming-changed", imsi, { roaming: true, mcc: "262" }, at(2_000)));
    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("active");
    // From now on the lock holds: the SIM back in other equipment is quarantined.
    await report(fact("sim.attached", imsi, { bearer: "cellular", imei: "490154203237518" }, at(3_000)));
    expect((await tenant.call("GET", `/v1/devices/${id}`)).json.state).toBe("quarantined");
  });
});

describe("an IMEI whose 15th digit is neither its check digit nor the spare zero (review 123)", () => {
  it("quarantines an IMEI-locked device whose Data Streamer PDP context names other equipment so spelled", async () => {
    const tenant = await tenantClient(runtime);
    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "emnify", format: "datastreamer" })).json;
    const basic = Buffer.from(`${credentials.basicUser}:${credentials.basicPassword}`).toString("base64");
    const imsi = "901430000000123";
    const id = (await tenant.call("POST", "/v1/devices", { imsi, imei: "490154203237518", imeiLock: true })).json.id;
    // TAC + SNR 35693803564380 (another handset: its check digit is 9), its 15th digit set to 1 by the equipment: the
    // identity is the equipment's own claim, unauthenticated, and it chooses the digit.
    const record = {
      id: 123_001,
      timestamp: new Date(Date.now() - 60_000).toISOString(),
      event_type: { id: 3, description: "Create PDP Context" },
      event_source: { id: 0, description: "Network" },
      imsi: { imsi },
      detail: {
        pdp_context: { apn: "em", ue_ip_address: "10.123.0.1", rat_type: 6, imeisv: "356938035643801", mcc: "901", mnc: "43" },
      },
    };
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: { authorization: `Basic ${basic}`, "content-type": "application/json" },
      body: JSON.stringify([record]),
    });
    expect(response.status).toBe(202);
    await runtime.settled();
    const device = (await tenant.call("GET", `/v1/devices/${id}`)).json;
    expect(device.identity.sessions.cellular).toMatchObject({ ipv4: "10.123.0.1" });
    expect(device.state).toBe("quarantined");
    // The handset is found by its IMEI whatever 15th digit a lookup gives.
    for (const imei of ["356938035643809", "356938035643801"]) {
      expect((await tenant.call("GET", `/v1/devices/lookup?imei=${imei}`)).json.id).toBe(id);
    }
  });
});

describe("a failed install naming a mistyped EID (review 123)", () => {
  it("does not make the device another eUICC's: the genuine eUICC's install of the profile applies", async () => {
    const tenant = await tenantClient(runtime);
    const eim = await eimJsonSource(runtime, tenant);
    const iccid = "8944500102198304834";
    const mistyped = "89049032123451234512345678901817";
    const genuine = "89049032123451234512345678901235";
    const device = (await tenant.call("POST", "/v1/devices", { iccids: [iccid] })).json;
    // The first download attempt failed: the operator's order named a mistyped EID (README: "a failed install marks
    // nothing: a failed download may name a mistyped EID").
    await eim({ eid: mistyped, notifications: [{ seqNumber: 1, operation: "install", iccid, result: "failure" }] });
    // The order corrected, the profile is downloaded to the device's real eUICC, and enabled.
    await eim({
      eid: genuine,
      notifications: [
        { seqNumber: 7, operation: "install", iccid, result: "success" },
        { seqNumber: 8, operation: "enable", iccid },
      ],
    });
    const profiles = (await tenant.call("GET", `/v1/devices/${device.id}/profiles`)).json.items;
    expect(profiles).toMatchObject([{ iccid, eid: genuine, state: "enabled" }]);
    const parked = (await tenant.call("GET", "/v1/dead-letters")).json.items ?? [];
    expect(parked.map((item: { reason?: string }) => item.reason)).toEqual([]);
  });
});
