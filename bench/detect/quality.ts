/**
 * Detection quality on the synthetic trace: simroot's detectors (the pure functions the API
 * and the detectors consumer run, with baselines kept exactly as the DynamoDB store keeps
 * them) against a static-threshold engine on the same trace. Recall per kind, and false
 * alarms per 1,000 device-days.
 */
import {
  defaultDetectorSettings,
  emptyBaseline,
  judgeFact,
  observeWindow,
  rememberRecent,
  type AnomalyKind,
  type DeviceBaseline,
  type DomainEvent,
  type SegmentBaseline,
} from "@simroot/core";
import { allowedCountries, anomalyKindsInjected, generateTrace, type Injected, type TraceItem, type TraceOptions } from "./trace.ts";

interface Alarm {
  readonly deviceId: string;
  readonly kind: AnomalyKind;
  readonly at: string;
}

type Detector = (item: TraceItem) => Alarm[];

function learnedDetector(): Detector {
  const settings = defaultDetectorSettings;
  const baselines = new Map<string, DeviceBaseline>();
  const segments = new Map<string, SegmentBaseline & { learned: number }>();
  return (item) => {
    const baseline = baselines.get(item.deviceId);
    if (item.kind === "window") {
      const segment = segments.get(item.segment) ?? { segment: item.segment, since: item.at, destinations: {}, learned: 0 };
      const verdict = observeWindow(baseline, segment, { deviceId: item.deviceId, at: item.at, pepId: "pep", flows: item.flows }, settings);
      baselines.set(item.deviceId, verdict.baseline);
      if (verdict.segmentLearns.length > 0) {
        const destinations = { ...segment.destinations };
        let learned = segment.learned;
        for (const key of verdict.segmentLearns) {
          if (learned >= settings.maxSegmentDestinations) break;
          learned += 1;
          destinations[key] = Math.floor(Date.parse(item.at) / 60_000);
        }
        segments.set(item.segment, { ...segment, destinations, learned });
      }
      return verdict.anomalies.map((anomaly) => ({ deviceId: item.deviceId, kind: anomaly.kind, at: item.at }));
    }
    const event = {
      id: "evt",
      type: item.type,
      tenantId: "t",
      subject: item.deviceId,
      time: item.at,
      actor: "source:s",
      requestId: "r",
      data: item.data,
    } as DomainEvent;
    const verdict = judgeFact(event, item.deviceId, baseline, allowedCountries, settings);
    if (verdict.learnBearer) {
      const base = baseline ?? emptyBaseline(item.deviceId, item.at);
      const bearers = Object.keys(
        rememberRecent(
          Object.fromEntries(base.bearers.map((b, i) => [b, i])),
          [verdict.learnBearer],
          base.bearers.length,
          settings.maxBearers,
        ),
      );
      baselines.set(item.deviceId, { ...base, bearers });
    }
    return verdict.anomaly ? [{ deviceId: item.deviceId, kind: verdict.anomaly.kind, at: item.at }] : [];
  };
}

/** Fixed thresholds, as alert engines configure them: volume, denials, an allowlist captured on day 1, any non-cellular bearer, any profile switch. */
function staticDetector(): Detector {
  const allowlist = new Set<string>();
  let firstDay: number | undefined;
  return (item) => {
    const alarm = (kind: AnomalyKind) => [{ deviceId: item.deviceId, kind, at: item.at }];
    if (item.kind === "window") {
      const at = Date.parse(item.at);
      firstDay ??= at;
      const learning = at - firstDay < 24 * 3600_000;
      const alarms: Alarm[] = [];
      const allowed = item.flows.filter((flow) => flow.decision === "allow");
      for (const flow of allowed) if (learning) allowlist.add(flow.destination);
      if (!learning && allowed.some((flow) => !allowlist.has(flow.destination))) alarms.push(...alarm("new-destination"));
      if (allowed.reduce((sum, flow) => sum + flow.bytes, 0) > 2_000_000) alarms.push(...alarm("volume-spike"));
      if (item.flows.filter((flow) => flow.decision === "deny").reduce((sum, flow) => sum + flow.count, 0) >= 10)
        alarms.push(...alarm("denied-burst"));
      return alarms;
    }
    const data = item.data as { bearer?: unknown; allowed?: unknown; previousImei?: unknown; cause?: { sourceType?: unknown } };
    if ((item.type === "sim.attached" || item.type === "bearer.switched") && data.bearer !== "cellular") return alarm("unexpected-bearer");
    if (item.type === "device.roaming-changed" && data.allowed === false) return alarm("geofence");
    if (item.type === "device.equipment-changed" && data.previousImei) return alarm("imei-change");
    if (item.type === "device.suspended" && /swap/.test(String(data.cause?.sourceType))) return alarm("sim-swap");
    if (item.type === "profile.enabled") return alarm("profile-switch");
    return [];
  };
}

export function measureQuality(options: TraceOptions) {
  const injected: Injected[] = [];
  const detectors = { learned: learnedDetector(), static: staticDetector() };
  const alarms = { learned: [] as Alarm[], static: [] as Alarm[] };
  const cpu = { learned: 0, static: 0 };
  let windows = 0;
  let facts = 0;
  for (const item of generateTrace(options, injected)) {
    if (item.kind === "window") windows += 1;
    else facts += 1;
    for (const name of ["learned", "static"] as const) {
      const started = performance.now();
      alarms[name].push(...detectors[name](item));
      cpu[name] += performance.now() - started;
    }
  }
  const deviceDays = options.devices * options.days;
  const injectedAt = new Set(injected.map((entry) => `${entry.deviceId}|${entry.at}`));
  const score = (raised: Alarm[]) => {
    const hits = new Set(raised.map((alarm) => `${alarm.deviceId}|${alarm.kind}|${alarm.at}`));
    const caught = injected.filter((entry) => hits.has(`${entry.deviceId}|${entry.kind}|${entry.at}`));
    const falseAlarms = raised.filter((alarm) => !injectedAt.has(`${alarm.deviceId}|${alarm.at}`));
    const perKind = Object.fromEntries(
      anomalyKindsInjected.map((kind) => {
        const of = injected.filter((entry) => entry.kind === kind);
        return [kind, `${caught.filter((entry) => entry.kind === kind).length}/${of.length}`];
      }),
    );
    const falseByKind = Object.fromEntries(
      anomalyKindsInjected.map((kind) => [kind, falseAlarms.filter((alarm) => alarm.kind === kind).length]),
    );
    return {
      recall: caught.length / Math.max(1, injected.length),
      falseAlarms: falseAlarms.length,
      perThousandDeviceDays: (falseAlarms.length / deviceDays) * 1000,
      perKind,
      falseByKind,
    };
  };
  return {
    injected: injected.length,
    windows,
    facts,
    deviceDays,
    learned: { ...score(alarms.learned), cpuMs: cpu.learned },
    static: { ...score(alarms.static), cpuMs: cpu.static },
  };
}
