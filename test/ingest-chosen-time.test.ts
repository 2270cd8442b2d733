/**
 * Redeliveries of facts whose time simroot chose (review 129): clamped to the receive time because the sender's clock ran
 * ahead, or stamped at receipt because the sender stated none. Each delivery is received at another time, so its
 * content must leave the time out, or `keyedByContent` renames it and applies it as a new fact, dated at its
 * redelivery, over what was reported in between.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A tenant with a Data Streamer source (`settings` beside its name), and `post`: records sent as the streamer sends them. */
async function streamer(name: string, settings: Record<string, unknown> = {}) {
  const tenant = await tenantClient(runtime, name);
  const created = await tenant.call("POST", "/v1/sources", { name: "emnify", format: "datastreamer", ...settings });
  expect(created.status, created.text).toBe(201);
  const { source, credentials } = created.json;
  const basic = Buffer.from(`${credentials.basicUser}:${credentials.basicPassword}`).toString("base64");
  const post = async (...records: unknown[]) => {
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: { authorization: `Basic ${basic}`, "content-type": "application/json" },
      body: JSON.stringify(records),
    });
    const json = (await response.json()) as { accepted: { clampedFrom?: string }[] };
    await runtime.settled();
    return { status: response.status, json };
  };
  return { tenant, post };
}

/** A Data Streamer PDP context record of the SIM `iccid` on `address`, stamped `stamp` (ms) by the streamer. */
const pdpRecord = (iccid: string, address: string, id: number, stamp: number, type: { id: number; description: string }) => ({
  id,
  timestamp: new Date(stamp).toISOString(),
  event_type: type,
  sim: { iccid },
  detail: { pdp_context: { apn: "iot.example", ue_ip_address: address, rat_type: 6 } },
});

describe("redelivered facts whose time simroot chose", () => {
  it("a Data Streamer record stamped ahead (clamped), redelivered after the session ended, does not reopen the session", async () => {
    const { tenant, post } = await streamer("chosen-streamer");
    const iccid = "89490200001291290001";
    const device = (await tenant.call("POST", "/v1/devices", { iccids: [iccid] })).json;
    // The streamer's clock runs 10 minutes ahead of simroot's (beyond the 5 minutes allowed): both records are clamped.
    const ahead = (ms: number) => new Date(Date.now() + 600_000 + ms).toISOString();
    const record = (id: number, at: number, type: { id: number; description: string }) =>
      pdpRecord(iccid, "10.129.0.7", id, Date.parse(ahead(at)), type);
    const created = record(1290001, 0, { id: 3, description: "Create PDP Context" });
    const deleted = record(1290002, 1000, { id: 5, description: "Delete PDP Context" });
    const first = await post(created);
    expect(first.status).toBe(202);
    expect(first.json.accepted[0]?.clampedFrom).toBeDefined();
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toMatchObject({ ipv4: "10.129.0.7" });
    await sleep(20);
    expect((await post(deleted)).status).toBe(202);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toBeUndefined();
    await sleep(20);
    // The streamer retransmits record 1290001 (same id, same content): a duplicate, which must change nothing.
    expect((await post(created)).status).toBe(202);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toBeUndefined();
  });

  it("a CAMARA event without `time`, redelivered after a later event, is a duplicate (its id keys redeliveries)", async () => {
    const tenant = await tenantClient(runtime, "chosen-camara");
    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "open gateway", format: "camara" })).json;
    const post = async (id: string, name: string, data: Record<string, unknown>) => {
      const response = await runtime.app.request(source.ingestPath, {
        method: "POST",
        headers: { authorization: `Bearer ${credentials.bearerToken}`, "content-type": "application/cloudevents+json" },
        body: JSON.stringify({
          specversion: "1.0",
          id,
          source: "https://api.operator.example/camara",
          type: `org.camaraproject.device-roaming-status-subscriptions.v0.${name}`,
          data,
        }),
      });
      expect(response.status).toBe(202);
      await runtime.settled();
    };
    const msisdn = "+491701290001";
    const registered = await tenant.call("POST", "/v1/devices", { imsi: "262011290000001", msisdn });
    expect(registered.status, registered.text).toBe(201);
    const device = registered.json;
    await post("r129-on", "roaming-on", { device: { phoneNumber: msisdn }, countryCode: 262 });
    expect(
      (await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.roaming,
      JSON.stringify((await tenant.call("GET", "/v1/parked")).json),
    ).toMatchObject({ roaming: true });
    await sleep(20);
    await post("r129-off", "roaming-off", { device: { phoneNumber: msisdn } });
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.roaming).toMatchObject({ roaming: false });
    await sleep(20);
    await post("r129-on", "roaming-on", { device: { phoneNumber: msisdn }, countryCode: 262 });
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.roaming).toMatchObject({ roaming: false });
  });
});

describe("a clamped record redelivered (review 131)", () => {
  it("once its stamp lies within the skew is a duplicate: it does not reopen the session a later record ended", async () => {
    const { tenant, post } = await streamer("chosen-boundary", { maxClockSkewSeconds: 1 });
    const iccid = "89490200001291390001";
    const device = (await tenant.call("POST", "/v1/devices", { iccids: [iccid] })).json;
    const t0 = Date.now();
    const record = (id: number, stamp: number, type: { id: number; description: string }) =>
      pdpRecord(iccid, "10.129.0.9", id, stamp, type);
    // The streamer's clock runs 2.5 s ahead, past the source's 1 s: the create is clamped to its receipt.
    const create = record(1390001, t0 + 2500, { id: 3, description: "Create PDP Context" });
    const first = await post(create);
    expect(first.status).toBe(202);
    expect(first.json.accepted[0]?.clampedFrom).toBeDefined();
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toMatchObject({ ipv4: "10.129.0.9" });
    await sleep(50);
    // The session's end, also clamped (to its own receipt, after the create's).
    const end = record(1390002, Date.now() + 2600, { id: 5, description: "Delete PDP Context" });
    const ended = await post(end);
    expect(ended.json.accepted[0]?.clampedFrom).toBeDefined();
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toBeUndefined();
    // The streamer retransmits the create (same id, same content) 2 s later: its stamp is now within the 1 s skew.
    await sleep(Math.max(0, t0 + 2000 - Date.now()));
    const again = await post(create);
    expect(again.status).toBe(202);
    expect(again.json.accepted[0]?.clampedFrom).toBeUndefined();
    // A redelivery changes nothing: the session stays ended.
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toBeUndefined();
  });

  it("after 32 later records left it out of the window is a duplicate, not a new session", async () => {
    const { tenant, post } = await streamer("chosen-window");
    const iccid = "89490200001291390002";
    const device = (await tenant.call("POST", "/v1/devices", { iccids: [iccid] })).json;
    const record = (id: number, stamp: number, type: { id: number; description: string }) =>
      pdpRecord(iccid, "10.129.0.10", id, stamp, type);
    // Stamped 10 minutes ahead (past the default 5): clamped to its receipt.
    const create = record(1390101, Date.now() + 600_000, { id: 3, description: "Create PDP Context" });
    expect((await post(create)).json.accepted[0]?.clampedFrom).toBeDefined();
    await sleep(20);
    // The session ends, then 32 more records (stated, not clamped) follow: the create leaves the device's window.
    const deletes = Array.from({ length: 33 }, (_, n) => record(1390200 + n, Date.now() + n, { id: 5, description: "Delete PDP Context" }));
    expect((await post(...deletes)).status).toBe(202);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toBeUndefined();
    await sleep(20);
    // The streamer retransmits the create (same id, same content): a duplicate, which must change nothing.
    expect((await post(create)).status).toBe(202);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toBeUndefined();
  });
});
