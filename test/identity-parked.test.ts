/** Parked facts are matched by every identifier they carry, normalized, when a device is registered. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { documentClient } from "@simroot/core";
import { parkedNaming, parkedRetentionSeconds } from "@simroot/core/ingest/parked";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let sequence = 0;
const reachable = (device: Record<string, string>) => ({
  type: "device.reachability-changed",
  dedupeKey: `parked-${++sequence}`,
  occurredAt: new Date(Date.now() - 60_000).toISOString(),
  device,
  sourceType: "test",
  data: { reachable: true },
});

describe("parked facts reach the device registered later, whatever identifier and spelling they used", () => {
  it.each([
    [
      "{iccid, imsi}, the device registered by IMSI",
      { iccid: "8944500102198304826", imsi: "208017770000001" },
      { imsi: "208017770000001" },
    ],
    ["an ICCID padded with F", { iccid: "8944500102198304834F" }, { iccids: ["8944500102198304834"] }],
    ["an MSISDN without +", { msisdn: "447700900777" }, { imsi: "208017770000003", msisdn: "+447700900777" }],
    ["a 5G SUPI", { supi: "imsi-208017770000004" }, { imsi: "208017770000004" }],
    ["an EAP-AKA permanent NAI", { nai: "0208017770000005@wlan.mnc001.mcc208.3gppnetwork.org" }, { imsi: "208017770000005" }],
  ])("%s", async (_, ref, registration) => {
    const tenant = await tenantClient(runtime);
    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    const text = JSON.stringify([reachable(ref)]);
    expect(
      (
        await runtime.app.request(source.ingestPath, {
          method: "POST",
          headers: standardWebhookHeaders(credentials.webhookSecret, text),
          body: text,
        })
      ).status,
    ).toBe(202);
    await runtime.settled();
    expect((await tenant.call("GET", "/v1/dead-letters")).json.items).toHaveLength(1);

    const device = (await tenant.call("POST", "/v1/devices", registration)).json;
    await runtime.settled();
    expect((await tenant.call("GET", "/v1/dead-letters")).json.items).toEqual([]);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.reachable).toMatchObject({ reachable: true });
  });
});

describe("the parked list at scale", () => {
  it("a registration reads the facts that name the device, not the tenant's other parked facts; each waits at most 30 days", async () => {
    const tenant = await tenantClient(runtime);
    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    const others = Array.from({ length: 30 }, (_, n) => reachable({ imsi: `20801888${String(n).padStart(7, "0")}` }));
    const text = JSON.stringify([...others, reachable({ imsi: "208019990000001" })]);
    const headers = standardWebhookHeaders(credentials.webhookSecret, text);
    expect((await runtime.app.request(source.ingestPath, { method: "POST", headers, body: text })).status).toBe(202);
    await runtime.settled();
    const parked = (await tenant.call("GET", "/v1/dead-letters?limit=100")).json.items as { expiresAt: number; parkedAt: string }[];
    expect(parked).toHaveLength(31);
    for (const each of parked) expect(each.expiresAt - Date.parse(each.parkedAt) / 1000).toBeCloseTo(parkedRetentionSeconds, -1);

    // What the reconciler reads for the registration: the store's own count of the items it examined.
    let examined = 0;
    const db = documentClient({ endpoint: runtime.endpoint, region: "us-east-1" });
    db.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const output = (result.output ?? {}) as { ScannedCount?: number; Responses?: Record<string, unknown[]> };
        examined += (output.ScannedCount ?? 0) + Object.values(output.Responses ?? {}).reduce((sum, items) => sum + items.length, 0);
        return result;
      },
      { step: "initialize" },
    );
    const ports = { ...runtime.ports, db };
    const found = await parkedNaming(ports, tenant.tenant.id, ["imsi:208019990000001", "iccid:8944500102198304999"]);
    expect(found.map((fact) => fact.subjects)).toEqual([["imsi:208019990000001"]]);
    expect(examined).toBe(2); // its index item and the fact; none of the 30 others
    db.destroy();

    await tenant.call("POST", "/v1/devices", { imsi: "208019990000001" });
    await runtime.settled();
    expect((await tenant.call("GET", "/v1/dead-letters?limit=100")).json.items).toHaveLength(30);
    expect(await parkedNaming(runtime.ports, tenant.tenant.id, ["imsi:208019990000001"])).toEqual([]);
  });
});

/** A NEF monitoring report of a PDN connection naming the UE by its external identifier, posted to the source. */
async function nefReport(
  created: { source: { ingestPath: string }; credentials: { bearerToken: string } },
  externalId: string,
  ipv4Addr: string,
  minutesAgo: number,
) {
  const body = JSON.stringify({
    subscription: "https://nef.example/3gpp-monitoring-event/v1/scs/subscriptions/1",
    monitoringEventReports: [
      {
        externalId,
        monitoringType: "PDN_CONNECTIVITY_STATUS",
        eventTime: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
        pdnConnInfoList: [{ status: "CREATED", apn: "fleet.iot", pdnType: "IPV4", ipv4Addr }],
      },
    ],
  });
  const response = await runtime.app.request(created.source.ingestPath, {
    method: "POST",
    headers: { authorization: `Bearer ${created.credentials.bearerToken}`, "content-type": "application/json" },
    body,
  });
  expect(response.status).toBe(202);
  await runtime.settled();
}

describe("a device known to the network by its external identifier (GPSI)", () => {
  it("takes NEF reports naming only the externalId, and replays the parked ones when the device is registered with it (review 58)", async () => {
    const tenant = await tenantClient(runtime);
    const created = (await tenant.call("POST", "/v1/sources", { name: "nef", format: "nef" })).json;
    const report = (externalId: string, ipv4Addr: string, minutesAgo: number) => nefReport(created, externalId, ipv4Addr, minutesAgo);
    // Before the device is registered: parked, naming the identifier it waits for.
    await report("meter-4@iot.example.com", "10.4.0.4", 2);
    const parked = (await tenant.call("GET", "/v1/dead-letters")).json.items as { subjects?: string[] }[];
    expect(parked).toHaveLength(1);
    const registered = await tenant.call("POST", "/v1/devices", { imsi: "208015550000004", externalId: "meter-4@iot.example.com" });
    expect(registered.status, registered.text).toBe(201);
    await runtime.settled();
    expect((await tenant.call("GET", "/v1/devices/lookup?ip=10.4.0.4")).json.id).toBe(registered.json.id);
    expect((await tenant.call("GET", "/v1/devices/lookup?externalId=meter-4@iot.example.com")).json.id).toBe(registered.json.id);
    // Registered: a report naming it applies at once; the identifier is the device's alone.
    await report("meter-4@iot.example.com", "10.4.0.5", 1);
    expect((await tenant.call("GET", "/v1/devices/lookup?ip=10.4.0.5")).json.id).toBe(registered.json.id);
    const taken = await tenant.call("POST", "/v1/devices", { imsi: "208015550000005", externalId: "meter-4@iot.example.com" });
    expect(taken.status).toBe(409);
    expect(await tenant.call("POST", "/v1/devices", { imsi: "208015550000006", externalId: "no-at-sign" })).toMatchObject({ status: 400 });
  });

  it("compares an external identifier's domain without regard to case, as DNS names are (review 60)", async () => {
    // `meter-7@IoT.Example.com` and `meter-7@iot.example.com` were two identifiers: a second device could be registered
    // with the other spelling, and a NEF report spelling the domain otherwise was parked for good.
    const tenant = await tenantClient(runtime);
    const created = (await tenant.call("POST", "/v1/sources", { name: "nef", format: "nef" })).json;
    const registered = await tenant.call("POST", "/v1/devices", { imsi: "208015550000007", externalId: "meter-7@IoT.Example.com" });
    expect(registered.status, registered.text).toBe(201);
    expect(registered.json.externalId).toBe("meter-7@iot.example.com");
    expect((await tenant.call("POST", "/v1/devices", { imsi: "208015550000008", externalId: "meter-7@iot.example.COM" })).status).toBe(409);
    expect((await tenant.call("GET", "/v1/devices/lookup?externalId=meter-7@IOT.EXAMPLE.COM")).json.id).toBe(registered.json.id);
    // The local part is the operator's to spell: another case there is another identifier.
    expect((await tenant.call("GET", "/v1/devices/lookup?externalId=METER-7@iot.example.com")).status).toBe(404);
    await nefReport(created, "meter-7@IOT.example.com", "10.4.0.7", 0);
    expect((await tenant.call("GET", "/v1/devices/lookup?ip=10.4.0.7")).json.id).toBe(registered.json.id);
  });
});
