/**
 * Posture export: Cloudflare's custom device posture endpoint (its request and response
 * shapes) and Tailscale custom posture attributes set through Tailscale's API, against a
 * loopback server, driven by simroot's events through the local bus.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { documentClient, portsFor, syncPostureToTailscale, type DomainEvent } from "@simroot/core";
import { startHttpCollector, type HttpCollector } from "../../packages/core/src/integration/http-collector.test-support.ts";
import { committedEvents } from "../support/audit-events.ts";
import { failDeliveryRecords } from "../support/store-faults.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "../support/runtime.ts";

let runtime: TestRuntime;
let tailscale: HttpCollector;
beforeAll(async () => {
  tailscale = await startHttpCollector((request) => ({
    status: request.headers.authorization === "Bearer tskey-api-test" ? 200 : 401,
    body: {},
  }));
  runtime = await startTestRuntime();
});
afterAll(async () => {
  await Promise.all([runtime.stop(), tailscale.close()]);
});

const meter = (imsi: string, labels: Record<string, string>, imei?: string) => ({ imsi, labels, ...(imei ? { imei } : {}) });

describe("Cloudflare custom device posture", () => {
  it("answers each WARP device's score in Cloudflare's shape, from the device's current state", async () => {
    const acme = await tenantClient(runtime);
    const labelled = (
      await acme.call(
        "POST",
        "/v1/devices",
        meter("208011234567801", { fleet: "meters", "cloudflare/device": "9ece5fab-7398-488a-a575-e25a9a3dec07" }),
      )
    ).json;
    const byImei = (await acme.call("POST", "/v1/devices", meter("208011234567802", { fleet: "meters" }, "490154203237518"))).json;
    const request = {
      devices: [
        {
          device_id: "9ece5fab-7398-488a-a575-e25a9a3dec07",
          email: "ops@example.com",
          serial_number: "",
          mac_address: "74:1d:3e:23:e0:fe",
          virtual_ipv4: "100.96.0.10",
          hostname: "gw-1",
        },
        { device_id: "1bb5a7f4-0c3e-4b8e-9c36-5b7f3c6e4a11", serial_number: "490154203237518" },
        { device_id: "0f0f0f0f-0000-4000-8000-000000000000", serial_number: "C02XK0GHJG5J" },
      ],
    };
    const first = await acme.call("POST", "/v1/integrations/cloudflare/posture", request);
    expect(first.status).toBe(200);
    expect(first.json).toEqual({
      result: {
        "9ece5fab-7398-488a-a575-e25a9a3dec07": { s2s_id: labelled.id, score: 90 },
        "1bb5a7f4-0c3e-4b8e-9c36-5b7f3c6e4a11": { s2s_id: byImei.id, score: 90 },
        // Unknown to simroot: not trusted.
        "0f0f0f0f-0000-4000-8000-000000000000": { s2s_id: "", score: 0 },
      },
    });
    await acme.call("POST", `/v1/devices/${labelled.id}/quarantine`, { reason: "IMEI changed" });
    const after = await acme.call("POST", "/v1/integrations/cloudflare/posture", request);
    expect(after.json.result["9ece5fab-7398-488a-a575-e25a9a3dec07"]).toEqual({ s2s_id: labelled.id, score: 10 });
  });

  it("scores a WARP device several devices are labelled with by the live ones, the lowest of them (review 160)", async () => {
    // The last device listed with the label won: a revoked device, which keeps its labels, locked the WARP device that
    // another device now carries out for good (or, listed last, hid a suspended one behind an active one).
    const acme = await tenantClient(runtime, "warp-shared");
    const warp = "5d3c1f0e-2b4a-4c6d-8e9f-0a1b2c3d4e5f";
    const register = async (imsi: string) =>
      (await acme.call("POST", "/v1/devices", meter(imsi, { fleet: "meters", "cloudflare/device": warp }))).json.id as string;
    const score = async () =>
      (await acme.call("POST", "/v1/integrations/cloudflare/posture", { devices: [{ device_id: warp }] })).json.result[warp];
    const stolen = await register("208011234567811");
    expect((await acme.call("POST", `/v1/devices/${stolen}/revoke`, { reason: "stolen" })).status).toBe(200);
    expect(await score()).toEqual({ s2s_id: stolen, score: 0 });
    // Its SIM replaced: the new device carries the label, and the revoked one no longer speaks for the WARP device.
    const replacement = await register("208011234567812");
    expect(await score()).toEqual({ s2s_id: replacement, score: 90 });
    // Two live devices with the label: the lower score, whichever is listed last.
    const other = await register("208011234567813");
    await acme.call("POST", `/v1/devices/${other}/suspend`, { reason: "lost" });
    expect(await score()).toEqual({ s2s_id: other, score: 0 });
    await acme.call("POST", `/v1/devices/${other}/reinstate`, { reason: "found" });
    await acme.call("POST", `/v1/devices/${replacement}/quarantine`, { reason: "IMEI changed" });
    expect(await score()).toEqual({ s2s_id: replacement, score: 10 });
  });

  it("rejects a malformed request with problem+json, and a request without a key", async () => {
    const acme = await tenantClient(runtime);
    const bad = await acme.call("POST", "/v1/integrations/cloudflare/posture", { devices: [{ email: "x@example.com" }] });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toContain("application/problem+json");
    const anonymous = await runtime.app.request("/v1/integrations/cloudflare/posture", {
      method: "POST",
      body: JSON.stringify({ devices: [] }),
      headers: { "content-type": "application/json" },
    });
    expect(anonymous.status).toBe(401);
  });
});

describe("Tailscale custom posture attributes", () => {
  const settings = (tenantId: string) => ({ tenantId, apiUrl: tailscale.url, apiKey: "tskey-api-test" });

  it("sets custom:simroot attributes on the device's tailnet node, only those that changed, audited once", async () => {
    const acme = await tenantClient(runtime);
    const node = "n5SUKe8CNTRL";
    const device = (await acme.call("POST", "/v1/devices", meter("208011234567803", { fleet: "meters", "tailscale/node": node }))).json;
    const before = tailscale.requests.length;
    // The tenant's creation is audited first; the device's registration follows.
    const [registered] = (await committedEvents(runtime, acme.tenant.id)).filter((event) => event.type === "device.registered");
    expect(await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), registered!)).toEqual([
      "custom:simrootState",
      "custom:simrootScore",
      "custom:simrootRoaming",
    ]);
    const sent = tailscale.requests.slice(before);
    expect(sent.map((request) => `${request.method} ${request.path}`).sort()).toEqual([
      `POST /api/v2/device/${node}/attributes/custom%3AsimrootRoaming`,
      `POST /api/v2/device/${node}/attributes/custom%3AsimrootScore`,
      `POST /api/v2/device/${node}/attributes/custom%3AsimrootState`,
    ]);
    expect(JSON.parse(sent.find((request) => request.path.endsWith("simrootScore"))!.body)).toMatchObject({ value: 90 });

    await acme.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "roaming" });
    const events = await committedEvents(runtime, acme.tenant.id);
    const quarantined = events.find((event) => event.type === "device.quarantined")!;
    const mid = tailscale.requests.length;
    expect(await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), quarantined)).toEqual([
      "custom:simrootState",
      "custom:simrootScore",
    ]);
    expect(tailscale.requests.length - mid).toBe(2);
    // Redelivered: nothing sent, nothing audited again.
    expect(await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), quarantined)).toEqual([]);
    expect(tailscale.requests.length - mid).toBe(2);
    const audited = (await committedEvents(runtime, acme.tenant.id)).filter((event) => event.type === "integration.tailscale-synced");
    expect(audited.map((event) => event.data.cause)).toEqual([
      // With the cause's actor: the record of a change a rule made carries its chain (review 84).
      { eventId: registered!.id, type: "device.registered", actor: registered!.actor },
      { eventId: quarantined.id, type: "device.quarantined", actor: quarantined.actor },
    ]);
  });

  it("fails (so the bus retries) when Tailscale refuses, and leaves devices without a node alone", async () => {
    const acme = await tenantClient(runtime);
    await acme.call("POST", "/v1/devices", meter("208011234567804", { "tailscale/node": "n1" }));
    await acme.call("POST", "/v1/devices", meter("208011234567805", { fleet: "meters" }));
    const registered = (await committedEvents(runtime, acme.tenant.id)).filter((event) => event.type === "device.registered");
    const onNode = (event: DomainEvent) => "tailscale/node" in ((event.data.device as { labels: Record<string, string> }).labels ?? {});
    const first = registered.find(onNode);
    const second = registered.find((event) => !onNode(event));
    await expect(
      syncPostureToTailscale(runtime.ports, { ...settings(acme.tenant.id), apiKey: "tskey-wrong" }, first!),
    ).rejects.toMatchObject({ code: "integration.tailscale_failed" });
    expect(await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), second!)).toEqual([]);
  });

  it("pushes a posture again when the bus retries an event whose push Tailscale refused (review 114)", async () => {
    const acme = await tenantClient(runtime);
    const node = "nRETRYCNTRL";
    const device = (await acme.call("POST", "/v1/devices", meter("208011234567806", { "tailscale/node": node }))).json;
    const event = async (type: string) => (await committedEvents(runtime, acme.tenant.id)).filter((e) => e.type === type).pop()!;
    await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), await event("device.registered"));
    // Revoked while Tailscale refuses (a key rotated there, an outage): the consumer fails, the bus retries.
    await acme.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" });
    const revoked = await event("device.revoked");
    await expect(
      syncPostureToTailscale(runtime.ports, { ...settings(acme.tenant.id), apiKey: "tskey-wrong" }, revoked),
    ).rejects.toMatchObject({ code: "integration.tailscale_failed" });
    const before = tailscale.requests.length;
    expect((await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), revoked)).sort()).toEqual([
      "custom:simrootRoaming",
      "custom:simrootScore",
      "custom:simrootState",
    ]);
    const sent = Object.fromEntries(
      tailscale.requests
        .slice(before)
        .map((request) => [decodeURIComponent(request.path.split("/").pop()!), JSON.parse(request.body).value]),
    );
    expect({ state: sent["custom:simrootState"], score: sent["custom:simrootScore"] }).toEqual({ state: "revoked", score: 0 });
  });

  it("audits a push whose audit record failed to commit: the redelivery finds the node in line and still records it, once", async () => {
    const acme = await tenantClient(runtime);
    const node = "nCOMMITFAILCNTRL";
    const device = (await acme.call("POST", "/v1/devices", meter("208011234567807", { "tailscale/node": node }))).json;
    const event = async (type: string) => (await committedEvents(runtime, acme.tenant.id)).filter((e) => e.type === type).pop()!;
    await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), await event("device.registered"));
    await acme.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" });
    const revoked = await event("device.revoked");
    // One instance of the consumer, whose store times out its commit of the audit record (the ledger's resends too).
    const db = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    let refusing = true;
    const refused = failDeliveryRecords(db, acme.tenant.id, "tailscale", () => refusing);
    const ports = portsFor(db, runtime.ports.tables, runtime.bus);
    try {
      const before = tailscale.requests.length;
      await expect(syncPostureToTailscale(ports, settings(acme.tenant.id), revoked)).rejects.toThrow();
      expect(refused.count).toBeGreaterThan(0);
      // The tailnet was changed: the node no longer passes `custom:simrootScore >= 60`.
      const score = tailscale.requests.slice(before).find((request) => request.path.endsWith("simrootScore"))!;
      expect(JSON.parse(score.body).value).toBe(0);

      // The bus gives the event again, then once more (a duplicate): the change is recorded, once.
      refusing = false;
      await syncPostureToTailscale(ports, settings(acme.tenant.id), revoked);
      await syncPostureToTailscale(ports, settings(acme.tenant.id), revoked);
      const records = (await committedEvents(runtime, acme.tenant.id)).filter(
        (e) => e.type === "integration.tailscale-synced" && (e.data.cause as { eventId: string }).eventId === revoked.id,
      );
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({
        subject: device.id,
        actor: "system:posture-sync",
        data: { node, attributes: { "custom:simrootState": "revoked", "custom:simrootScore": 0 } },
      });
      // What the revocation changed on the node (roaming was false already).
      expect([...(records[0]!.data.set as string[])].sort()).toEqual(["custom:simrootScore", "custom:simrootState"]);
    } finally {
      db.destroy();
    }
  });

  it("does not record as set what an earlier attempt planned but Tailscale refused, the device reinstated since (review 141)", async () => {
    const acme = await tenantClient(runtime);
    const node = "nPLANREFUSEDCNTRL";
    const device = (await acme.call("POST", "/v1/devices", meter("208011234567809", { "tailscale/node": node }))).json;
    const event = async (type: string) => (await committedEvents(runtime, acme.tenant.id)).filter((e) => e.type === type).pop()!;
    await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), await event("device.registered"));
    // The suspension's first delivery plans its push, and Tailscale refuses it: the node still says active.
    await acme.call("POST", `/v1/devices/${device.id}/suspend`, { reason: "unpaid" });
    const suspended = await event("device.suspended");
    await expect(
      syncPostureToTailscale(runtime.ports, { ...settings(acme.tenant.id), apiKey: "tskey-wrong" }, suspended),
    ).rejects.toMatchObject({ code: "integration.tailscale_failed" });
    // Reinstated (its run pushes active again), then the bus gives the suspension again: nothing of it was ever set.
    await acme.call("POST", `/v1/devices/${device.id}/reinstate`, { reason: "paid" });
    await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), await event("device.reinstated"));
    await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), suspended);
    const records = (await committedEvents(runtime, acme.tenant.id)).filter(
      (e) => e.type === "integration.tailscale-synced" && (e.data.cause as { eventId: string }).eventId === suspended.id,
    );
    expect(records.map((record) => record.data.set)).toEqual([]);
  });

  it("records nothing for a delivery that found nothing to change on the node", async () => {
    const acme = await tenantClient(runtime);
    const device = (await acme.call("POST", "/v1/devices", meter("208011234567808", { "tailscale/node": "nINLINECNTRL" }))).json;
    const registered = (await committedEvents(runtime, acme.tenant.id)).find((e) => e.type === "device.registered")!;
    await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), registered);
    const audit = await committedEvents(runtime, acme.tenant.id);
    const before = tailscale.requests.length;
    // Another event of the device (its id new to the consumer), delivered twice: the node holds its posture already, so
    // neither delivery changes anything, nor records anything.
    const later = { ...registered, id: `evt_later_${device.id}` };
    expect(await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), later)).toEqual([]);
    expect(await syncPostureToTailscale(runtime.ports, settings(acme.tenant.id), later)).toEqual([]);
    expect(tailscale.requests.length).toBe(before);
    expect((await committedEvents(runtime, acme.tenant.id)).length).toBe(audit.length);
  });

  it("reaches Tailscale within seconds of a change, through the bus and the very consumer Lambda runs", async () => {
    const acme = await tenantClient(runtime);
    const node = "nBUSTESTCNTRL";
    const device = (await acme.call("POST", "/v1/devices", meter("208011234567806", { "tailscale/node": node }))).json;
    process.env.SIMROOT_TAILSCALE_TENANT_ID = acme.tenant.id;
    process.env.SIMROOT_TAILSCALE_API_URL = tailscale.url;
    process.env.SIMROOT_TAILSCALE_API_KEY = "tskey-api-test";
    try {
      const start = performance.now();
      await acme.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" });
      const arrived = await tailscale.waitFor(
        (request) =>
          request.path === `/api/v2/device/${node}/attributes/custom%3AsimrootState` && JSON.parse(request.body).value === "revoked",
        5_000,
      );
      expect(arrived.at - start).toBeLessThan(5_000);
    } finally {
      delete process.env.SIMROOT_TAILSCALE_TENANT_ID;
      delete process.env.SIMROOT_TAILSCALE_API_URL;
      delete process.env.SIMROOT_TAILSCALE_API_KEY;
    }
  });
});
