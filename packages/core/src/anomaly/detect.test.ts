import { describe, expect, it } from "vitest";
import type { DomainEvent } from "../event/event.ts";
import type { FlowRecord } from "../feed/flows.ts";
import { emptyBaseline, type DeviceBaseline } from "./baseline.ts";
import { judgeFact } from "./detect-facts.ts";
import { observeWindow } from "./detect-flows.ts";
import { defaultDetectorSettings as settings } from "./model.ts";

const hour = 3600_000;
const flow = (destination: string, bytes = 20_000, decision: "allow" | "deny" = "allow", count = 3): FlowRecord => ({
  deviceId: "dev_1",
  destination,
  port: 443,
  protocol: "tcp",
  decision,
  reason: "r",
  count,
  bytes,
});

/** A baseline taught `windows` usual windows, one an hour. */
function taught(windows = 30, destinations = ["a.example"]) {
  let baseline: DeviceBaseline | undefined;
  const start = Date.parse("2026-01-01T00:00:00Z");
  for (let i = 0; i < windows; i++) {
    const at = new Date(start + i * hour).toISOString();
    baseline = observeWindow(
      baseline,
      undefined,
      { deviceId: "dev_1", at, pepId: "p", flows: destinations.map((d) => flow(d, 20_000 + (i % 5) * 1000)) },
      settings,
    ).baseline;
  }
  return { baseline: baseline!, next: new Date(start + windows * hour).toISOString() };
}

describe("flow detectors", () => {
  it("judge nothing during warm-up, then flag a new destination, a volume spike and a denied burst with evidence", () => {
    const young = taught(5);
    expect(
      observeWindow(
        young.baseline,
        undefined,
        { deviceId: "dev_1", at: young.next, pepId: "p", flows: [flow("evil.example", 10_000_000)] },
        settings,
      ).anomalies,
    ).toEqual([]);
    const { baseline, next } = taught();
    const verdict = observeWindow(
      baseline,
      undefined,
      { deviceId: "dev_1", at: next, pepId: "p", flows: [flow("a.example", 5_000_000), flow("evil.example"), flow("x", 0, "deny", 50)] },
      settings,
    );
    expect(verdict.anomalies.map((anomaly) => anomaly.kind).sort()).toEqual(["denied-burst", "new-destination", "volume-spike"]);
    const spike = verdict.anomalies.find((anomaly) => anomaly.kind === "volume-spike")!;
    // Judged on what went to known destinations: the new one is the new-destination detector's.
    expect(spike.evidence.seen.bytes).toBe(5_000_000);
    expect(spike.evidence.baseline.bytesMean).toBeGreaterThan(19_000);
    // The spike does not teach the baseline its volume.
    expect(verdict.baseline.bytesMean).toBe(baseline.bytesMean);
  });

  it("stay quiet on usual traffic", () => {
    const { baseline, next } = taught();
    expect(
      observeWindow(baseline, undefined, { deviceId: "dev_1", at: next, pepId: "p", flows: [flow("a.example", 24_000)] }, settings)
        .anomalies,
    ).toEqual([]);
  });

  it("keep a bounded baseline however many destinations a device reaches", () => {
    let { baseline, next } = taught();
    for (let i = 0; i < 500; i++) {
      baseline = observeWindow(
        baseline,
        undefined,
        { deviceId: "dev_1", at: next, pepId: "p", flows: [flow(`d${i}.example`)] },
        settings,
      ).baseline;
    }
    expect(Object.keys(baseline.destinations)).toHaveLength(settings.maxDestinations);
    expect(JSON.stringify(baseline).length).toBeLessThan(1024);
  });
});

const event = (type: string, data: Record<string, unknown>, time = "2026-01-05T00:00:00Z"): DomainEvent =>
  ({ id: "evt_1", type, tenantId: "ten_1", subject: "dev_1", time, actor: "source:src_1", requestId: "req_1", data }) as DomainEvent;

describe("operator-event detectors", () => {
  const old = { ...emptyBaseline("dev_1", "2026-01-01T00:00:00Z"), bearers: ["cellular"] };
  it.each([
    ["imei-change", event("device.equipment-changed", { imei: "490154203237518", previousImei: "356938035643809" })],
    ["sim-swap", event("device.suspended", { cause: { sourceType: "org.camaraproject.sim-swap-subscriptions.v0.swapped" } })],
    ["geofence", event("device.roaming-changed", { roaming: true, country: "RU", allowed: false })],
    ["geofence", event("sim.attached", { bearer: "cellular", plmn: { mcc: "250", mnc: "01" } })],
    ["unexpected-bearer", event("bearer.switched", { bearer: "satellite", from: "cellular" })],
    ["profile-switch", event("profile.enabled", { event: { data: { iccid: "8944500102198304826", cause: "fallback" } } })],
  ])("flag %s", (kind, fact) => {
    expect(judgeFact(fact, "dev_1", old, ["FR", "DE"], settings).anomaly).toMatchObject({
      kind,
      deviceId: "dev_1",
      evidence: { facts: [{ id: "evt_1" }] },
    });
  });

  it.each([
    ["a first IMEI", event("device.equipment-changed", { imei: "490154203237518" })],
    ["a suspension that is not a swap", event("device.suspended", { cause: { sourceType: "emnify.9" } })],
    ["roaming where allowed", event("device.roaming-changed", { roaming: true, country: "DE", allowed: true })],
    ["the usual bearer", event("sim.attached", { bearer: "cellular", plmn: { mcc: "208", mnc: "01" } })],
    ["an operator-initiated profile switch", event("profile.enabled", { event: { data: { iccid: "8944500102198304826" } } })],
  ])("let %s pass", (_, fact) => {
    expect(judgeFact(fact, "dev_1", old, ["FR", "DE"], settings).anomaly).toBeUndefined();
  });

  it("learn the bearers of a young device instead of flagging them", () => {
    const young = { ...emptyBaseline("dev_1", "2026-01-04T23:00:00Z"), bearers: ["cellular"] };
    expect(judgeFact(event("bearer.switched", { bearer: "wifi" }), "dev_1", young, [], settings)).toEqual({ learnBearer: "wifi" });
  });
});
