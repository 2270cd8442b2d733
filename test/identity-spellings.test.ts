/**
 * Review 119: how a device's identity is parsed, normalised and matched across the API and the operator formats. Most
 * tests show one spelling of an identifier (or of an address) that an operator format uses and the API path does not,
 * and what is lost for it; the last two show a malformed record answered 202 and an eUICC registered as two devices.
 */
import twilio from "twilio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coreFact, eimJsonSource, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

type Tenant = Awaited<ReturnType<typeof tenantClient>>;

/** An emnify / 1NCE Data Streamer source of the tenant, and a function that posts records to it as the streamer does. */
async function dataStreamer(tenant: Tenant) {
  const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "emnify", format: "datastreamer" })).json;
  const basic = Buffer.from(`${credentials.basicUser}:${credentials.basicPassword}`).toString("base64");
  return async (...records: unknown[]) => {
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: { authorization: `Basic ${basic}`, "content-type": "application/json" },
      body: JSON.stringify(records),
    });
    const text = await response.text();
    await runtime.settled();
    return { status: response.status, contentType: response.headers.get("content-type"), text, json: JSON.parse(text) };
  };
}

/** A CAMARA subscription sink of the tenant, and a function that posts one CloudEvent to it (expects 202). */
async function camara(tenant: Tenant) {
  const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "open gateway", format: "camara" })).json;
  let sequence = 0;
  return async (type: string, data: Record<string, unknown>) => {
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: { authorization: `Bearer ${credentials.bearerToken}`, "content-type": "application/cloudevents+json" },
      body: JSON.stringify({
        specversion: "1.0",
        id: `r119-${++sequence}`,
        source: "https://api.operator.example/camara",
        type,
        time: new Date(Date.now() - 60_000 + sequence).toISOString(),
        data,
      }),
    });
    expect(response.status).toBe(202);
    await runtime.settled();
  };
}

let record = 0;
/** A Data Streamer record as the 1NCE examples carry it, of event type `typeId`. */
const streamerRecord = (typeId: number, description: string, fields: Record<string, unknown>) => ({
  id: 119_000 + ++record,
  timestamp: new Date(Date.now() - 60_000 + record).toISOString(),
  event_type: { id: typeId, description },
  event_source: { id: 2, description: "API" },
  organisation: { id: 1234, name: "8100xxxx" },
  ...fields,
});

const deadLetters = async (tenant: Tenant) =>
  ((await tenant.call("GET", "/v1/dead-letters")).json.items as { reason: string }[]).map((item) => item.reason);

describe("an ICCID with and without its Luhn check digit names one SIM (review 119)", () => {
  // emnify and 1NCE name a SIM by `iccid`, its ICCID without the Luhn check digit (their SIM resource also has
  // `iccid_with_luhn`); the card, the eUICC's EF.ICCID (an eIM's notifications) and Twilio carry the full ICCID
  // (ITU-T E.118: the check digit is its last). 8988303000005733850 is emnify's spelling of 89883030000057338508.
  const full = "89883030000057338508";
  const withoutCheckDigit = "8988303000005733850";

  it("revokes the device registered by its full ICCID when the Data Streamer reports its SIM deleted", async () => {
    const tenant = await tenantClient(runtime);
    const post = await dataStreamer(tenant);
    const registered = (await tenant.call("POST", "/v1/devices", { iccids: [full] })).json;
    const answer = await post(streamerRecord(10, "SIM deletion", { sim: { iccid: withoutCheckDigit, id: 3577707 } }));
    expect(answer.status).toBe(202);
    expect(await deadLetters(tenant)).toEqual([]);
    expect((await tenant.call("GET", `/v1/devices/${registered.id}`)).json.state).toBe("revoked");
  });

  it("refuses one registration naming the SIM in both spellings, naming the field, and registers nothing", async () => {
    const tenant = await tenantClient(runtime);
    const both = await tenant.call("POST", "/v1/devices", { iccids: [full, withoutCheckDigit] });
    expect([both.status, both.json.errors?.[0]?.path]).toEqual([400, "iccids"]);
    expect((await tenant.call("GET", "/v1/devices")).json.items).toEqual([]);
  });

  it("does not register a second device for the same SIM spelled without its check digit", async () => {
    const tenant = await tenantClient(runtime);
    const first = await tenant.call("POST", "/v1/devices", { iccids: [full] });
    expect(first.status).toBe(201);
    const second = await tenant.call("POST", "/v1/devices", { iccids: [withoutCheckDigit] });
    expect([second.status, second.json.errors?.[0]?.path]).toEqual([409, "iccids"]);
  });
});

describe("a CAMARA networkAccessIdentifier is the GPSI external identifier (review 119)", () => {
  // CAMARA_common.yaml, NetworkAccessIdentifier: "In 3GPP terminology, it corresponds to the GPSI formatted with the
  // External Identifier ({Local Identifier}@{Domain Identifier})", example 123456789@domain.com: what a device is
  // registered with as `externalId`, not an EAP-AKA Wi-Fi NAI (0<IMSI>@wlan...).
  it("quarantines an IMEI-locked device named by its network access identifier when CAMARA reports its IMEI changed", async () => {
    const tenant = await tenantClient(runtime);
    const post = await camara(tenant);
    const registered = (
      await tenant.call("POST", "/v1/devices", {
        imsi: "208015550119001",
        imei: "490154203237518",
        externalId: "meter-119@iot.example.com",
        imeiLock: true,
      })
    ).json;
    await post("org.camaraproject.iot-sim-fraud-prevention.v0.imei-change", {
      subscriptionId: "sub-119",
      imei: "35-209900-176148-1",
      device: { networkAccessIdentifier: "meter-119@iot.example.com" },
    });
    expect(await deadLetters(tenant)).toEqual([]);
    const device = (await tenant.call("GET", `/v1/devices/${registered.id}`)).json;
    expect([device.state, device.identity.imei]).toEqual(["quarantined", "352099001761481"]);
  });
});

describe("one spelling per IPv6 address in every operator format (review 119; review 58 for the simroot format)", () => {
  it("binds a Data Streamer PDP context's IPv6 address in its canonical spelling, found by it", async () => {
    const tenant = await tenantClient(runtime);
    const post = await dataStreamer(tenant);
    const registered = (await tenant.call("POST", "/v1/devices", { imsi: "295090004119001" })).json;
    const answer = await post(
      streamerRecord(3, "Create PDP Context", {
        imsi: { imsi: "295090004119001", id: 1 },
        detail: { pdp_context: { apn: "em", ue_ip_address: "2001:DB8:0:0:0:0:0:119", rat_type: 6, mcc: "295", mnc: "09" } },
      }),
    );
    expect(answer.status).toBe(202);
    expect((await tenant.call("GET", `/v1/devices/${registered.id}`)).json.identity.sessions.cellular?.ipv6).toBe("2001:db8::119");
    expect((await tenant.call("GET", `/v1/devices/lookup?ip=${encodeURIComponent("2001:db8::119")}`)).json.id).toBe(registered.id);
  });

  it("resolves a CAMARA event naming the device by another spelling of its IPv6 address", async () => {
    const tenant = await tenantClient(runtime);
    const core = await simrootSource(runtime, tenant);
    const post = await camara(tenant);
    const registered = (await tenant.call("POST", "/v1/devices", { imsi: "208015550119002" })).json;
    await core(
      coreFact(
        "sim.attached",
        "208015550119002",
        { bearer: "cellular", ipv6: "2001:db8::1:119" },
        new Date(Date.now() - 120_000).toISOString(),
        "r119-attach",
      ),
    );
    expect((await tenant.call("GET", `/v1/devices/lookup?ip=${encodeURIComponent("2001:DB8::1:119")}`)).json.id).toBe(registered.id);
    await post("org.camaraproject.device-reachability-status-subscriptions.v0.reachability-disconnected", {
      subscriptionId: "sub-119",
      device: { ipv6Address: "2001:DB8:0:0:0:0:1:119" },
    });
    expect(await deadLetters(tenant)).toEqual([]);
    expect((await tenant.call("GET", `/v1/devices/${registered.id}`)).json.identity.reachable).toMatchObject({ reachable: false });
  });
});

describe("a Data Streamer record whose SIM identifiers are not identifiers (review 119)", () => {
  it("refuses a SIM deletion naming the SIM by a malformed ICCID and IMSI with problem+json naming them, not 202 and nothing", async () => {
    const tenant = await tenantClient(runtime);
    const post = await dataStreamer(tenant);
    const answer = await post(
      streamerRecord(10, "SIM deletion", { sim: { iccid: "8988303000005733850X", id: 3577707 }, imsi: { imsi: "29509000411900A", id: 1 } }),
    );
    expect([answer.status, answer.contentType, answer.text]).toEqual([
      400,
      "application/problem+json",
      expect.stringContaining("sim.iccid"),
    ]);
  });
});

describe("an IMEI reported with its spare digit (review 119)", () => {
  // TS 23.003 §6.2.1: the IMEI's 15th digit is the Luhn check digit over TAC + SNR, computed, not transmitted: the MS
  // sends a spare digit, zero, in its place (MAP and GTP carry TAC + SNR + 0). datastreamer.ts `imeiOf` recomputes the
  // check digit of a 14- or 16-digit report but drops a 15-digit one whose last digit is not it: the SIM's move into that
  // equipment is never observed.
  it("quarantines an IMEI-locked device whose Super SIM session starts in other equipment reported with a zero spare digit", async () => {
    const authToken = "0123456789abcdef0123456789abcdef";
    const tenant = await tenantClient(runtime);
    const created = await tenant.call("POST", "/v1/sources", {
      name: "super sim",
      format: "supersim",
      credentials: { twilioAuthToken: authToken },
    });
    expect(created.status, created.text).toBe(201);
    const registered = (
      await tenant.call("POST", "/v1/devices", { iccids: ["89883070000044236119"], imei: "490154203237518", imeiLock: true })
    ).json;
    const time = new Date(Date.now() - 60_000).toISOString();
    const body = JSON.stringify([
      {
        specversion: "1.0",
        type: "com.twilio.iot.supersim.connection.data-session.started",
        source: "/v1/Sims/HS0119",
        id: "EZ0119",
        time,
        // TAC + SNR 35693803564380 (check digit 9), sent with its spare digit 0.
        data: {
          sim_iccid: "89883070000044236119",
          imei: "356938035643800",
          rat_type: "4G LTE",
          ip_address: "100.65.1.19",
          timestamp: time,
        },
      },
    ]);
    const path = `${created.json.source.ingestPath}?bodySHA256=${twilio.getExpectedBodyHash(body)}`;
    const signature = twilio.getExpectedTwilioSignature(authToken, `http://localhost${path}`, {});
    const response = await runtime.app.request(path, {
      method: "POST",
      headers: { "content-type": "application/json", "x-twilio-signature": signature },
      body,
    });
    expect(response.status).toBe(202);
    await runtime.settled();
    const device = (await tenant.call("GET", `/v1/devices/${registered.id}`)).json;
    expect(device.identity.sessions.cellular).toMatchObject({ ipv4: "100.65.1.19" });
    expect([device.state, device.identity.imei?.slice(0, 14)]).toEqual(["quarantined", "35693803564380"]);
  });

  it("finds the device by its equipment's IMEI whether reported with the spare digit or the check digit", async () => {
    const tenant = await tenantClient(runtime);
    const core = await simrootSource(runtime, tenant);
    const registered = (await tenant.call("POST", "/v1/devices", { imsi: "208015550119003", imeiLock: false })).json;
    await core(
      coreFact(
        "device.equipment-changed",
        "208015550119003",
        { imei: "356938035643800" },
        new Date(Date.now() - 60_000).toISOString(),
        "r119-equipment",
      ),
    );
    expect((await tenant.call("GET", `/v1/devices/${registered.id}`)).json.identity.imei).toBe("356938035643800");
    // The same equipment, TAC + SNR 35693803564380, by its IMEI with the check digit and by an IMEISV.
    for (const imei of ["356938035643809", "3569380356438012"])
      expect([imei, (await tenant.call("GET", `/v1/devices/lookup?imei=${imei}`)).json.id]).toEqual([imei, registered.id]);
  });
});

describe("an eUICC known by its profiles' reports is one device (review 119)", () => {
  it("does not register a second device for the EID an eIM reported the device's profile on", async () => {
    const tenant = await tenantClient(runtime);
    const eim = await eimJsonSource(runtime, tenant);
    const eid = "89049032123451234512345678901235";
    const registered = (await tenant.call("POST", "/v1/devices", { iccids: ["8944500102198304826"] })).json;
    await eim({ eid, notifications: [{ seqNumber: 1, operation: "install", iccid: "8944500102198304826", result: "success" }] });
    expect((await tenant.call("GET", `/v1/devices/${registered.id}/profiles`)).json.items).toMatchObject([{ eid, state: "installed" }]);
    const second = await tenant.call("POST", "/v1/devices", { eid });
    expect([second.status, second.json.errors?.[0]?.path]).toEqual([409, "eid"]);
    // A failed install names an eUICC the profile never reached (a mistyped EID): it marks nothing.
    const elsewhere = "89049032123451234512345678901817";
    const failed = (await tenant.call("POST", "/v1/devices", { iccids: ["8944500102198304834"] })).json;
    await eim({ eid: elsewhere, notifications: [{ seqNumber: 2, operation: "install", iccid: "8944500102198304834", result: "failure" }] });
    expect((await tenant.call("GET", `/v1/devices/${failed.id}/profiles`)).json.items).toMatchObject([{ eid: elsewhere, state: "failed" }]);
    expect((await tenant.call("POST", "/v1/devices", { eid: elsewhere })).status).toBe(201);
    // Revoked, the device gives its eUICC up: registered again, by its EID, it is a device of its own.
    expect((await tenant.call("POST", `/v1/devices/${registered.id}/revoke`, { reason: "returned" })).status).toBe(200);
    const again = await tenant.call("POST", "/v1/devices", { eid });
    expect(again.status, again.text).toBe(201);
  });
});

describe("a profile's ICCID another device holds in its other spelling (review 120)", () => {
  it("names one device whichever spelling a report uses", async () => {
    // 8988303000005733850 is emnify's spelling (no check digit) of 89883030000057338508.
    const full = "89883030000057338508";
    const withoutCheckDigit = "8988303000005733850";
    const eid = "89049032123451234512345678901235";
    const tenant = await tenantClient(runtime);
    const eim = await eimJsonSource(runtime, tenant);
    // The SIM, registered as emnify's portal names it; the eUICC it is downloaded to, registered by its EID.
    const sim = await tenant.call("POST", "/v1/devices", { iccids: [withoutCheckDigit] });
    expect(sim.status, sim.text).toBe(201);
    const euicc = await tenant.call("POST", "/v1/devices", { eid });
    expect(euicc.status, euicc.text).toBe(201);
    // The eIM reports the profile installed, by its full ICCID (EF.ICCID carries the check digit).
    await eim({ eid, notifications: [{ seqNumber: 1, operation: "install", iccid: full, result: "success" }] });

    const byFull = (await tenant.call("GET", `/v1/devices/lookup?iccid=${full}`)).json.id;
    const byEmnify = (await tenant.call("GET", `/v1/devices/lookup?iccid=${withoutCheckDigit}`)).json.id;
    // A registration of the full spelling is refused as the SIM's (review 119); a followed profile should be no different.
    expect({ byFull, byEmnify }).toEqual({ byFull: sim.json.id, byEmnify: sim.json.id });
  });
});
