/**
 * Decisions about a fact made on this instance's cached copies of a device and its aliases (review 97), with two
 * runtimes that share only the tables, as Lambda instances do: each caches what it last read, and another's writes do
 * not reach that cache.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { detectEventAnomalies, ingestedEvent, normalizedEventSchema, type NormalizedEvent } from "@simroot/core";
import { createTestPki, signedOtherNotification, withEidCheckDigits } from "../packages/core/src/ingest/adapters/eim-pki.test-support.ts";
import { call, simrootSource, tenantClient, twoInstances, type TestRuntime } from "./support/runtime.ts";

// Two instances sharing only the tables.
const instances = twoInstances("caches");
let a: TestRuntime;
let b: TestRuntime;
beforeAll(() => void ({ a, b } = instances));

const ask = (imsi: string) => ({
  device: { imsi },
  destination: { fqdn: "ingest.example.com", ip: "203.0.113.10" },
  port: 8883,
  protocol: "tcp",
  bearer: "cellular",
  country: "FR",
});

let sequence = 0;
const fact = (type: string, device: Record<string, string>, data: Record<string, unknown>) => ({
  type,
  dedupeKey: `caches-${++sequence}`,
  occurredAt: new Date(Date.now() - 60_000 + sequence).toISOString(),
  device,
  sourceType: type,
  data,
});

describe("an instance's cached device and aliases (review 97)", () => {
  it("do not send a fact of a SIM revoked and registered again through another instance to the revoked device", async () => {
    const tenant = await tenantClient(a, "caches-revoked");
    const postB = await simrootSource(b, tenant);
    const sim = { imsi: "208018880000097", iccids: ["8944500102198304990"] };
    const first = (await tenant.call("POST", "/v1/devices", sim)).json;
    // B applies a fact of the device: it caches the alias and the device, active.
    await postB(fact("device.reachability-changed", { imsi: sim.imsi }, { reachable: true }));
    // Through A, an admin revokes it and registers the SIM again (a replacement device).
    expect((await tenant.call("POST", `/v1/devices/${first.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    const again = (await tenant.call("POST", "/v1/devices", sim)).json;
    // The operator suspends the SIM; B applies it.
    await postB(fact("device.suspended", { imsi: sim.imsi }, { reason: "SIM swap reported by operator" }));
    expect((await tenant.call("GET", `/v1/devices/${again.id}`)).json.state).toBe("suspended");
  });

  it("do not judge a fact of a SIM registered again stale on a cached copy of its revoked device (review 99)", async () => {
    const tenant = await tenantClient(a, "caches-stale");
    const postB = await simrootSource(b, tenant);
    const sim = { imsi: "208018880000099", iccids: ["8944500102198304982"] };
    const first = (await tenant.call("POST", "/v1/devices", sim)).json;
    // B applies a window's worth of the device's facts and one more: its cached copy judges anything older stale.
    const at = (offset: number) => new Date(Date.now() - 600_000 + offset).toISOString();
    const reports = Array.from({ length: 33 }, (_, index) => ({
      ...fact("device.reachability-changed", { imsi: sim.imsi }, { reachable: index % 2 === 0 }),
      occurredAt: at(60_000 + index * 1_000),
    }));
    await postB(...reports);
    // Through A, an admin revokes it and registers the SIM again.
    expect((await tenant.call("POST", `/v1/devices/${first.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    const again = (await tenant.call("POST", "/v1/devices", sim)).json;
    // The operator reports the new device unreachable, a report older than the revoked device's window; B applies it.
    await postB({ ...fact("device.reachability-changed", { imsi: sim.imsi }, { reachable: false }), occurredAt: at(0) });
    expect((await tenant.call("GET", `/v1/devices/${again.id}`)).json.identity.reachable).toMatchObject({ reachable: false });
  });

  it("answer a lookup by a SIM registered again through another instance with the replacement, not the revoked device (review 109)", async () => {
    const tenant = await tenantClient(a, "caches-lookup");
    const sim = { imsi: "234109000000003", msisdn: "+447700900109" };
    const first = (await tenant.call("POST", "/v1/devices", sim)).json;
    // Instance B answers a lookup of the SIM: it caches the alias.
    expect((await call(b, tenant.token, "GET", `/v1/devices/lookup?imsi=${sim.imsi}`)).json.id).toBe(first.id);
    // Through A: the device is revoked (stolen) and its SIM registered again to a replacement.
    expect((await tenant.call("POST", `/v1/devices/${first.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    const replacement = (await tenant.call("POST", "/v1/devices", sim)).json;
    const onA = await call(a, tenant.token, "GET", `/v1/devices/lookup?imsi=${sim.imsi}`);
    expect(onA.json.id).toBe(replacement.id);
    const onB = await call(b, tenant.token, "GET", `/v1/devices/lookup?imsi=${sim.imsi}`);
    expect({ id: onB.json.id, state: onB.json.state }).toEqual({ id: replacement.id, state: "active" });
  });

  it("answer a what-if for a SIM registered again through another instance for the replacement (review 110)", async () => {
    const tenant = await tenantClient(a, "caches-whatif");
    const sim = { imsi: "234109000001101" };
    const first = (await tenant.call("POST", "/v1/devices", sim)).json;
    // Instance B evaluates a connection of the SIM: it caches the alias.
    const before = await call(b, tenant.token, "POST", "/v1/decisions/evaluate", ask(sim.imsi));
    expect(before.status, before.text).toBe(200);
    expect(before.json.deviceId).toBe(first.id);
    // Through A: revoked (stolen) and the SIM registered again to a replacement.
    expect((await tenant.call("POST", `/v1/devices/${first.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    const replacement = (await tenant.call("POST", "/v1/devices", sim)).json;
    const onB = await call(b, tenant.token, "POST", "/v1/decisions/evaluate", ask(sim.imsi));
    expect({ deviceId: onB.json.deviceId, deviceState: onB.json.deviceState }).toEqual({ deviceId: replacement.id, deviceState: "active" });
  });

  it("record an unhandled event of a SIM registered again through another instance on the replacement (review 110)", async () => {
    const tenant = await tenantClient(a, "caches-unhandled");
    const postB = await simrootSource(b, tenant);
    const sim = { imsi: "234109000001102" };
    const first = (await tenant.call("POST", "/v1/devices", sim)).json;
    const at = () => new Date(Date.now() - 1_000).toISOString();
    // B applies a fact of the device: it caches the alias and the device, active.
    await postB({
      type: "device.reachability-changed",
      dedupeKey: "r110-1",
      occurredAt: at(),
      device: sim,
      sourceType: "core",
      data: { reachable: true },
    });
    expect((await tenant.call("POST", `/v1/devices/${first.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    const replacement = (await tenant.call("POST", "/v1/devices", sim)).json;
    await postB({
      type: "source.unhandled",
      dedupeKey: "r110-2",
      occurredAt: at(),
      device: sim,
      sourceType: "vendor.thing",
      data: { sourceType: "vendor.thing", summary: { note: "r110" } },
    });
    const timeline = (await tenant.call("GET", `/v1/devices/${replacement.id}/timeline`)).json;
    const revokedTimeline = (await tenant.call("GET", `/v1/devices/${first.id}/timeline`)).json;
    const types = (page: { items?: { type?: string }[] }) => JSON.stringify(page);
    expect(types(revokedTimeline)).not.toContain("vendor.thing");
    expect(types(timeline)).toContain("vendor.thing");
  });

  it("score a WARP device by the replacement when its equipment's SIM was registered again through another instance (review 110)", async () => {
    const tenant = await tenantClient(a, "caches-posture");
    const imei = "490154203237518";
    const warp = { devices: [{ device_id: "1bb5a7f4-0c3e-4b8e-9c36-5b7f3c6e4a11", serial_number: imei }] };
    const first = (await tenant.call("POST", "/v1/devices", { imsi: "234109000001103", imei })).json;
    // Instance B scores the equipment: it caches the IMEI's alias.
    const before = await call(b, tenant.token, "POST", "/v1/integrations/cloudflare/posture", warp);
    expect(before.json.result[warp.devices[0]!.device_id]).toEqual({ s2s_id: first.id, score: 90 });
    // Through A: revoked, and the equipment registered again with a new SIM.
    expect((await tenant.call("POST", `/v1/devices/${first.id}/revoke`, { reason: "SIM replaced" })).status).toBe(200);
    const replacement = (await tenant.call("POST", "/v1/devices", { imsi: "234109000001104", imei })).json;
    const onB = await call(b, tenant.token, "POST", "/v1/integrations/cloudflare/posture", warp);
    expect(onB.json.result[warp.devices[0]!.device_id]).toEqual({ s2s_id: replacement.id, score: 90 });
  });

  it("raise an anomaly of a reported fact on the replacement of a SIM registered again through another instance (review 110)", async () => {
    const tenant = await tenantClient(a, "caches-detect");
    const postB = await simrootSource(b, tenant);
    const eid = "89049032123451234512345678901235";
    const iccid = "8944500102198304826";
    const first = (await tenant.call("POST", "/v1/devices", { eid, iccids: [iccid] })).json;
    const switched = (n: number, cause?: string) => ({
      type: "profile.enabled",
      dedupeKey: `r110-detect-${n}`,
      occurredAt: new Date(Date.now() - 1_000).toISOString(),
      device: { eid },
      sourceType: "eim",
      data: { eid, iccid, seqNumber: n, ...(cause ? { cause } : {}) },
    });
    // B applies a report of the eUICC: it caches the alias.
    await postB(switched(1));
    expect((await tenant.call("POST", `/v1/devices/${first.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    const replacement = (await tenant.call("POST", "/v1/devices", { eid, iccids: [iccid] })).json;
    // The eUICC reports a switch caused by a fallback, and B's detectors judge the report (in AWS their own function,
    // whose instances cache aliases apart from the applier's: called here directly, so that no applier on B reads the
    // alias afresh first).
    const reported = ingestedEvent(
      { tenantId: tenant.tenant.id, actor: "source:test", requestId: "r110-detect" },
      "src_test",
      "simroot",
      normalizedEventSchema.parse(switched(2, "fallback")) as NormalizedEvent,
      new Date(),
    );
    await detectEventAnomalies(b.ports, reported);
    const anomalies = async (deviceId: string) =>
      (await tenant.call("GET", `/v1/devices/${deviceId}/timeline?limit=500`)).json.items.filter(
        (entry: { type: string }) => entry.type === "anomaly.detected",
      );
    expect((await anomalies(replacement.id)).map((entry: { data: { kind: string } }) => entry.data.kind)).toEqual(["profile-switch"]);
    expect(await anomalies(first.id)).toEqual([]);
  });

  it("park another eUICC's notification on an instance that cached the device before its eUICC first reported", async () => {
    const tenant = await tenantClient(a, "caches-euicc");
    const pki = createTestPki();
    const created = await tenant.call("POST", "/v1/sources", { name: "eIM", format: "eim", credentials: { trustAnchors: [pki.ci.pem] } });
    const { source, credentials } = created.json;
    const postTo = async (on: TestRuntime, notification: Uint8Array) => {
      const response = await on.app.request(source.ingestPath, {
        method: "POST",
        headers: { authorization: `Bearer ${credentials.bearerToken}`, "content-type": "application/json" },
        body: JSON.stringify({ pendingNotification: Buffer.from(notification).toString("base64") }),
      });
      await on.settled();
      return response.status;
    };
    const iccid = "8944500102198304875";
    const eid = withEidCheckDigits("890490321234512345123456789088");
    const strayEid = withEidCheckDigits("890490321234512345123456789099");
    const device = (await tenant.call("POST", "/v1/devices", { iccids: [iccid], imsi: "208018880000098" })).json;
    // B applies a fact of the device before any profile is reported: it caches the device with none.
    const postB = await simrootSource(b, tenant);
    await postB(fact("device.reachability-changed", { imsi: "208018880000098" }, { reachable: true }));
    expect(await postTo(a, signedOtherNotification(1, "enable", iccid, pki.euicc(eid), pki.eum))).toBe(202);
    // Another genuine eUICC signs a deletion of that profile; B applies it.
    expect(await postTo(b, signedOtherNotification(2, "delete", iccid, pki.euicc(strayEid), pki.eum))).toBe(202);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.profiles[iccid]).toMatchObject({ state: "enabled", eid });
  });
});
