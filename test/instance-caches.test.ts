/**
 * Decisions about a fact made on this instance's cached copies of a device and its aliases (review 97), with two
 * runtimes that share only the tables, as Lambda instances do: each caches what it last read, and another's writes do
 * not reach that cache.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestPki, signedOtherNotification, withEidCheckDigits } from "../packages/core/src/ingest/adapters/eim-pki.test-support.ts";
import { call, simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let a: TestRuntime;
let b: TestRuntime;
beforeAll(async () => {
  const tablePrefix = `caches${randomBytes(4).toString("hex")}-`;
  a = await startTestRuntime({ tablePrefix });
  b = await startTestRuntime({ tablePrefix, feedHubUrl: a.feedHubUrl });
}, 60_000);
afterAll(async () => {
  await b?.stop();
  await a?.stop();
});

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
