/**
 * A seeded synthetic fleet trace: `devices` devices in 50 segments, `days` days of flow
 * windows (`windowMinutes` each) and operator events, with labelled injected anomalies of
 * every kind the detectors know, after the first two days. The normal behaviour includes
 * what makes fixed thresholds cry wolf: devices of very different volumes with a daily cycle,
 * legitimate retry storms, devices that use Wi-Fi as well as cellular (from their first day),
 * roaming into allowed countries, operator-initiated eUICC profile switches, a firmware
 * rollout that sends a whole segment to a new update server (one window), and devices that
 * occasionally reach a destination their segment's other devices use.
 */
import { anomalyKinds, type AnomalyKind, type FlowRecord } from "@simroot/core";

export interface TraceOptions {
  readonly devices: number;
  readonly days: number;
  readonly windowMinutes: number;
  readonly seed: number;
  /** Share of devices given an injected anomaly. */
  readonly injectedShare: number;
}

export interface Injected {
  readonly deviceId: string;
  readonly kind: AnomalyKind;
  readonly at: string;
}

export type TraceItem =
  | { readonly kind: "window"; readonly deviceId: string; readonly segment: string; readonly at: string; readonly flows: FlowRecord[] }
  | {
      readonly kind: "fact";
      readonly deviceId: string;
      readonly at: string;
      readonly type: string;
      readonly data: Record<string, unknown>;
    };

/** Every kind the detectors know is injected (the issue asks for every kind). */
export const anomalyKindsInjected: readonly AnomalyKind[] = anomalyKinds;

/** mulberry32: small, fast, seeded. */
export function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const allowedCountries = ["FR", "DE"];
const start = Date.parse("2026-11-02T00:00:00Z");

interface DeviceModel {
  id: string;
  segment: number;
  destinations: string[];
  meanBytes: number;
  wifi: boolean;
  roams: boolean;
  imei: string;
  injected?: { kind: AnomalyKind; window: number };
}

/** The trace, window by window in time order (every device's window t before any window t+1). */
export function* generateTrace(options: TraceOptions, injected: Injected[]): Generator<TraceItem> {
  const rand = random(options.seed);
  const gauss = () => Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand());
  const windowsPerDay = Math.round((24 * 60) / options.windowMinutes);
  const windows = windowsPerDay * options.days;
  const segments = Array.from({ length: 50 }, (_, s) => Array.from({ length: 8 }, (_, d) => `s${s}-api${d}.example.com`));
  const rollouts = new Map<number, number>(Array.from({ length: 5 }, (_, i) => [i * 10 + 3, windowsPerDay * (3 + (i % 4)) + 7]));
  const models: DeviceModel[] = Array.from({ length: options.devices }, (_, n) => {
    const segment = n % 50;
    const own = 1 + Math.floor(rand() * 3);
    const pool = [...segments[segment]!].sort(() => rand() - 0.5);
    return {
      id: `dev_${String(n).padStart(6, "0")}`,
      segment,
      destinations: pool.slice(0, own),
      meanBytes: Math.exp(Math.log(20_000) + gauss() * 1.2),
      wifi: rand() < 0.2,
      roams: rand() < 0.1,
      imei: `35${String(n).padStart(13, "0")}`,
    };
  });
  for (const model of models) {
    if (rand() >= options.injectedShare) continue;
    const kind = anomalyKindsInjected[Math.floor(rand() * anomalyKindsInjected.length)]!;
    const window = 2 * windowsPerDay + Math.floor(rand() * (windows - 2 * windowsPerDay));
    model.injected = { kind, window };
    injected.push({ deviceId: model.id, kind, at: new Date(start + (window + 1) * options.windowMinutes * 60_000).toISOString() });
  }
  for (let w = 0; w < windows; w++) {
    const at = new Date(start + (w + 1) * options.windowMinutes * 60_000).toISOString();
    const hourOfDay = ((w % windowsPerDay) / windowsPerDay) * 24;
    const daily = 1 + 0.5 * Math.sin(((hourOfDay - 6) / 24) * 2 * Math.PI);
    for (const model of models) {
      const flows: FlowRecord[] = [];
      const flow = (destination: string, bytes: number, decision: "allow" | "deny" = "allow", count = 1 + Math.floor(rand() * 5)) =>
        flows.push({
          deviceId: model.id,
          destination,
          port: 443,
          protocol: "tcp",
          decision,
          reason: decision === "allow" ? "allow.rule" : "deny.default",
          count,
          bytes,
        });
      const volume = model.meanBytes * daily * Math.exp(gauss() * 0.3) * (rand() < 0.002 ? 3 : 1);
      for (const destination of model.destinations) flow(destination, Math.round(volume / model.destinations.length));
      if (rand() < 0.003) flow(segments[model.segment]![Math.floor(rand() * 8)]!, 2_000);
      if (rollouts.get(model.segment) === w) flow(`s${model.segment}-firmware.example.com`, 500_000);
      const denied = rand() < 0.001 ? 8 + Math.floor(rand() * 8) : rand() < 0.05 ? 1 + Math.floor(rand() * 2) : 0;
      if (denied > 0) flow("blocked.example.com", 0, "deny", denied);
      const fact = (type: string, data: Record<string, unknown>) => ({ kind: "fact" as const, deviceId: model.id, at, type, data });

      const inject = model.injected?.window === w ? model.injected.kind : undefined;
      if (inject === "new-destination") flow("c2.attacker.example.net", 40_000);
      if (inject === "volume-spike")
        flows[0] = { ...flows[0]!, bytes: Math.round(Math.max(volume * (15 + rand() * 85), 200_000 + rand() * 300_000)) };
      if (inject === "denied-burst") flow("scan.target.example", 0, "deny", 30 + Math.floor(rand() * 200));
      yield { kind: "window", deviceId: model.id, segment: `seg-${model.segment}`, at, flows };

      if (w === 0 || (w % windowsPerDay === 5 && rand() < 0.3))
        yield fact("sim.attached", { bearer: "cellular", plmn: { mcc: "208", mnc: "01" } });
      if (model.wifi && (w === 1 || rand() < 0.01))
        yield fact("bearer.switched", { bearer: w === 1 || rand() < 0.5 ? "wifi" : "cellular", from: "cellular" });
      if (model.roams && rand() < 0.002) yield fact("device.roaming-changed", { roaming: true, country: "DE", mcc: "262", allowed: true });
      if (rand() < 0.0005) yield fact("profile.enabled", { event: { data: { iccid: "8933000000000000001", cause: "eimRequest" } } });
      if (inject === "geofence") yield fact("device.roaming-changed", { roaming: true, country: "RU", mcc: "250", allowed: false });
      if (inject === "imei-change") yield fact("device.equipment-changed", { imei: "490154203237518", previousImei: model.imei });
      if (inject === "sim-swap")
        yield fact("device.suspended", { cause: { sourceType: "org.camaraproject.sim-swap-subscriptions.v0.swapped" } });
      if (inject === "unexpected-bearer") yield fact("bearer.switched", { bearer: "satellite", from: "cellular", rat: "NB_IOT_LEO" });
      if (inject === "profile-switch")
        yield fact("profile.enabled", {
          event: { data: { iccid: "8933000000000000002", cause: rand() < 0.5 ? "fallback" : "deviceChange" } },
        });
    }
  }
}
