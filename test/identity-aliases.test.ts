/** Identifiers are released when a device is revoked (its history kept), and aliases follow an IMEI change. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let sequence = 0;
const fact = (type: string, device: Record<string, string>, data: Record<string, unknown>) => ({
  type,
  dedupeKey: `alias-${++sequence}`,
  occurredAt: new Date(Date.now() - 60_000 + sequence).toISOString(),
  device,
  sourceType: type,
  data,
});

async function setup() {
  const tenant = await tenantClient(runtime);
  const post = await simrootSource(runtime, tenant);
  const device = async (id: string) => (await tenant.call("GET", `/v1/devices/${id}`)).json;
  return { tenant, post, device };
}

describe("aliases", () => {
  it("releases a revoked SIM's identifiers so it can be registered again; the revoked device and its history stay", async () => {
    const { tenant, post, device } = await setup();
    const sim = { imsi: "208018880000001", iccids: ["8944500102198304842"], msisdn: "+447700900881" };
    const first = (await tenant.call("POST", "/v1/devices", sim)).json;
    await post(fact("device.reachability-changed", { imsi: sim.imsi }, { reachable: true })); // resolved (and cached) to the first device
    expect((await tenant.call("POST", `/v1/devices/${first.id}/revoke`, { reason: "stolen" })).status).toBe(200);

    const again = await tenant.call("POST", "/v1/devices", sim);
    expect(again.status).toBe(201);
    expect(await device(first.id)).toMatchObject({ state: "revoked", imsi: sim.imsi });
    const history = (await tenant.call("GET", `/v1/audit?subject=${first.id}`)).json.items.map(
      (record: { action: string }) => record.action,
    );
    expect(history).toEqual(["device.registered", "device.reachability-changed", "device.revoked"]);

    // A report naming the SIM now reaches the device registered again, not the revoked one.
    await post(fact("device.reachability-changed", { imsi: sim.imsi }, { reachable: false }));
    expect((await device(again.json.id)).identity.reachable).toMatchObject({ reachable: false });
  });

  it("resolves a device by its new IMEI after an IMEI change, and no longer by the old one", async () => {
    const { tenant, post, device } = await setup();
    const registered = (await tenant.call("POST", "/v1/devices", { imsi: "208018880000002", imei: "490154203237518", imeiLock: false }))
      .json;
    await post(fact("device.equipment-changed", { imsi: "208018880000002" }, { imei: "356938035643809" }));
    expect((await device(registered.id)).identity.imei).toBe("356938035643809");
    await post(fact("device.reachability-changed", { imei: "356938035643809" }, { reachable: true }));
    expect((await device(registered.id)).identity.reachable).toMatchObject({ reachable: true });
    expect((await tenant.call("GET", "/v1/dead-letters")).json.items).toEqual([]);
    // The old equipment can be registered to another device now.
    expect((await tenant.call("POST", "/v1/devices", { imsi: "208018880000003", imei: "490154203237518" })).status).toBe(201);
  });

  it("revokes a device whose last equipment's IMEI another device holds, by an admin and by its operator, and leaves that IMEI to the other (review 58)", async () => {
    // A SIM moved into equipment another device was registered with: the IMEI alias stays the other device's. Revoking
    // the SIM's device released the alias on the condition that it was its own, so the revocation failed every time.
    const { tenant, post, device } = await setup();
    const holder = (await tenant.call("POST", "/v1/devices", { imsi: "208018880000011", imei: "490154203237518" })).json;
    const moved = (await tenant.call("POST", "/v1/devices", { imsi: "208018880000012", imeiLock: false })).json;
    const other = (await tenant.call("POST", "/v1/devices", { imsi: "208018880000013", imeiLock: false })).json;
    for (const imsi of ["208018880000012", "208018880000013"])
      await post(fact("sim.attached", { imsi }, { bearer: "cellular", imei: "490154203237518" }));
    expect((await device(moved.id)).identity.imei).toBe("490154203237518");
    const revoked = await tenant.call("POST", `/v1/devices/${moved.id}/revoke`, { reason: "stolen" });
    expect([revoked.status, revoked.json.device?.state], revoked.text).toEqual([200, "revoked"]);
    await post(fact("device.revoked", { imsi: "208018880000013" }, { reason: "SIM deleted at the operator" }));
    expect((await device(other.id)).state).toBe("revoked");
    expect((await tenant.call("GET", "/v1/dead-letters")).json.items).toEqual([]);
    // The IMEI still resolves to the device that holds it.
    const found = await tenant.call("GET", "/v1/devices/lookup?imei=490154203237518");
    expect(found.json.id ?? found.json.device?.id).toBe(holder.id);
  });

  it("never attributes a report to a device by its IMEI alone when the report names a SIM the tenant does not know (review 58)", async () => {
    // An IMEI is not authenticated by the network: a stranger's SIM in equipment claiming an enrolled device's IMEI
    // took that device's session, address and policy at every enforcement point.
    const { tenant, post, device } = await setup();
    const enrolled = (await tenant.call("POST", "/v1/devices", { imsi: "208018880000021", imei: "352099001761499" })).json;
    await post(
      fact(
        "sim.attached",
        { iccid: "89445001021983049995F", imsi: "208018880000029", imei: "352099001761499" },
        { bearer: "cellular", ipv4: "10.3.0.3" },
      ),
    );
    expect((await device(enrolled.id)).identity.sessions).toEqual({});
    expect((await tenant.call("GET", "/v1/devices/lookup?ip=10.3.0.3")).status).toBe(404);
    // Nor by the address the device holds (review 60: the IP fallback moved the enrolled device's binding).
    await post(fact("sim.attached", { imsi: "208018880000021" }, { bearer: "cellular", ipv4: "10.3.0.4" }));
    await post(fact("sim.attached", { imsi: "208018880000028", ip: "10.3.0.4" }, { bearer: "cellular", ipv4: "10.60.6.6" }));
    expect((await tenant.call("GET", "/v1/devices/lookup?ip=10.60.6.6")).status).toBe(404);
    expect((await tenant.call("GET", "/v1/devices/lookup?ip=10.3.0.4")).json.id).toBe(enrolled.id);
    expect((await tenant.call("GET", "/v1/dead-letters")).json.items).toHaveLength(2);
    // A report naming the equipment alone still reaches the device, in any of the IMEI's forms (14, 15, 16 digits).
    for (const [n, imei] of ["352099001761499", "35209900176149", "3520990017614901"].entries()) {
      await post(fact("device.reachability-changed", { imei }, { reachable: n % 2 === 0 }));
      expect((await device(enrolled.id)).identity.reachable).toMatchObject({ reachable: n % 2 === 0 });
    }
  });
});

describe("IPv6 addresses (review 58)", () => {
  it("refuses a session address that is not IPv6, and keeps one spelling per address: one binding, found in any spelling", async () => {
    const tenant = await tenantClient(runtime);
    const post = await simrootSource(runtime, tenant);
    const first = (await tenant.call("POST", "/v1/devices", { imsi: "208018880000031" })).json.id as string;
    const second = (await tenant.call("POST", "/v1/devices", { imsi: "208018880000032" })).json.id as string;
    await post(fact("sim.attached", { imsi: "208018880000031" }, { bearer: "cellular", ipv6: "2001:DB8:0:0:0:0:0:1" }));
    expect((await tenant.call("GET", `/v1/devices/${first}`)).json.identity.sessions.cellular.ipv6).toBe("2001:db8::1");
    for (const spelling of ["2001:db8::1", "2001:DB8::0:1", "2001:0db8:0000:0000:0000:0000:0000:0001"])
      expect((await tenant.call("GET", `/v1/devices/lookup?ip=${encodeURIComponent(spelling)}`)).json.id).toBe(first);
    // Another spelling of the same address taken by a second device: the address moves, it is not bound twice.
    await post(fact("sim.attached", { imsi: "208018880000032" }, { bearer: "cellular", ipv6: "2001:db8:0::1" }));
    expect((await tenant.call("GET", "/v1/devices/lookup?ip=2001:db8::1")).json.id).toBe(second);
    // An IPv4-mapped address is the IPv4 address, as every PEP reads it (review 60: bound as IPv6 beside its IPv4
    // spelling, two devices on what PEPs took for one address): refused as IPv6, and found by either spelling.
    await post(fact("sim.attached", { imsi: "208018880000031" }, { bearer: "cellular", ipv4: "10.60.1.3" }));
    expect((await tenant.call("GET", "/v1/devices/lookup?ip=::ffff:10.60.1.3")).json.id).toBe(first);
    // Not an address: refused, nothing applied.
    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "bad", format: "simroot" })).json;
    for (const ipv6 of ["not-an-ip-at-all", "::ffff:10.60.1.3"]) {
      const text = JSON.stringify([fact("sim.attached", { imsi: "208018880000032" }, { bearer: "satellite", ipv6 })]);
      const refused = await runtime.app.request(source.ingestPath, {
        method: "POST",
        headers: standardWebhookHeaders(credentials.webhookSecret, text),
        body: text,
      });
      expect([ipv6, refused.status]).toEqual([ipv6, 400]);
    }
    await runtime.settled();
    expect((await tenant.call("GET", `/v1/devices/${second}`)).json.identity.sessions.satellite).toBeUndefined();
  });
});
