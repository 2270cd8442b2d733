/**
 * The operator-event detectors on the bus: what operator sources report becomes
 * `anomaly.detected` (audited, on the device's timeline) with its evidence, once, and a rule
 * acts on it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let sequence = 0;
const fact = (type: string, data: Record<string, unknown>, device: Record<string, string>, sourceType = type) => ({
  type,
  dedupeKey: `fact-${++sequence}`,
  occurredAt: new Date(Date.UTC(2026, 10, 22, 6, sequence)).toISOString(),
  device,
  sourceType,
  data,
});

async function setup() {
  const tenant = await tenantClient(runtime, `det-${sequence}`);
  const report = await simrootSource(runtime, tenant);
  const post = (facts: unknown[]) => report(...facts);
  const anomalies = async (deviceId: string) =>
    (await tenant.call("GET", `/v1/devices/${deviceId}/timeline?limit=500`)).json.items.filter(
      (entry: { type: string }) => entry.type === "anomaly.detected",
    );
  return { tenant, post, anomalies };
}

describe("operator-event detectors", { timeout: 120_000 }, () => {
  it("flag an IMEI change and a SIM swap with their evidence, and a rule suspends on them", async () => {
    const { tenant, post, anomalies } = await setup();
    const imsi = "208019000000001";
    const device = (await tenant.call("POST", "/v1/devices", { imsi, imei: "356938035643809", imeiLock: false })).json;
    await tenant.call("POST", "/v1/automation/rules", {
      name: "suspend on identity theft",
      pattern: { source: ["simroot"], "detail-type": ["anomaly.detected"], detail: { data: { kind: ["imei-change"] } } },
      actions: [{ type: "suspend" }],
    });
    await post([fact("sim.attached", { bearer: "cellular", imei: "490154203237518", plmn: { mcc: "208", mnc: "01" } }, { imsi })]);
    const found = await anomalies(device.id);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      actor: "system:detectors",
      data: {
        kind: "imei-change",
        evidence: {
          seen: { imei: "490154203237518" },
          baseline: { imei: "356938035643809" },
          facts: [{ type: "device.equipment-changed" }],
        },
      },
    });
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.state).toBe("suspended");
  });

  it("flag an eUICC profile switch caused by a fallback, once however often it is delivered", async () => {
    const { tenant, post, anomalies } = await setup();
    const eid = "89049032123451234512345678901235";
    const registered = await tenant.call("POST", "/v1/devices", { eid, iccids: ["8944500102198304826"] });
    expect(registered.status, registered.text).toBe(201);
    const device = registered.json;
    const switched = fact("profile.enabled", { eid, iccid: "8944500102198304826", seqNumber: 4, cause: "fallback" }, { eid });
    await post([switched]);
    await post([switched]);
    await post([fact("profile.enabled", { eid, iccid: "8944500102198304827", seqNumber: 5 }, { eid })]);
    const found = await anomalies(device.id);
    expect(found.map((entry: { data: { kind: string } }) => entry.data.kind)).toEqual(["profile-switch"]);
    expect(found[0].data.evidence.seen).toEqual({ iccid: "8944500102198304826", cause: "fallback" });
  });
});
