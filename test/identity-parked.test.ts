/** Parked facts are matched by every identifier they carry, normalized, when a device is registered. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
