/**
 * The flow detectors, pure: one device's flows in one reported window against its baseline
 * and its segment's. New destination (for the device and its segment), volume far above
 * baseline, denied attempts in a burst. Returns the anomalies and the baseline to keep; an
 * anomalous window does not teach the baseline its volume (an attacker cannot train it).
 */
import type { FlowRecord } from "../feed/flows.ts";
import {
  destinationKey,
  emptyBaseline,
  epochMinutes,
  ewma,
  isSegmentWarm,
  isWarm,
  rememberRecent,
  type DeviceBaseline,
  type SegmentBaseline,
} from "./baseline.ts";
import type { Anomaly, DetectorSettings } from "./model.ts";

export interface WindowObservation {
  readonly deviceId: string;
  /** The window's end. */
  readonly at: string;
  readonly pepId: string;
  readonly flows: readonly FlowRecord[];
}

export interface WindowVerdict {
  readonly baseline: DeviceBaseline;
  readonly anomalies: Anomaly[];
  /** Destination keys the segment should learn (new to it, and not flagged in this window). */
  readonly segmentLearns: string[];
  /** Destination keys flagged as new for the device and its warm segment: the segment learns one only from a quorum. */
  readonly segmentFlags: string[];
  /** Whether `baseline` changed (and must be stored). */
  readonly learned: boolean;
}

const evidenceFlow = (flow: FlowRecord, pepId: string) => ({
  destination: flow.destination,
  port: flow.port,
  protocol: flow.protocol,
  decision: flow.decision,
  count: flow.count,
  bytes: flow.bytes,
  pepId,
});

export function observeWindow(
  previous: DeviceBaseline | undefined,
  segment: SegmentBaseline | undefined,
  observation: WindowObservation,
  settings: DetectorSettings,
): WindowVerdict {
  const { at, deviceId } = observation;
  const baseline = previous ?? emptyBaseline(deviceId, at);
  const warm = isWarm(baseline, at, settings);
  const minute = epochMinutes(at);
  const allowed = observation.flows.filter((flow) => flow.decision === "allow");
  const denied = observation.flows.filter((flow) => flow.decision === "deny");
  const keyed = allowed.map((flow) => ({ flow, key: destinationKey(flow.destination, flow.port, flow.protocol) }));
  // Volume is judged on what the device sends where it usually does: what goes somewhere new is
  // the new-destination detector's (or, if its segment knows it, a rollout's, not an anomaly).
  const bytes = keyed.filter(({ key }) => !warm || baseline.destinations[key] !== undefined).reduce((sum, { flow }) => sum + flow.bytes, 0);
  const deniedCount = denied.reduce((sum, flow) => sum + flow.count, 0);
  const anomalies: Anomaly[] = [];
  const anomaly = (kind: Anomaly["kind"], severity: Anomaly["severity"], summary: string, evidence: Anomaly["evidence"]) =>
    anomalies.push({ kind, deviceId, severity, summary, observedAt: at, evidence });

  const segmentWarm = isSegmentWarm(segment, at, settings);
  const novel = keyed.filter(({ key }) => baseline.destinations[key] === undefined);
  const unknown = warm ? novel.filter(({ key }) => !segmentWarm || segment!.destinations[key] === undefined) : [];
  if (warm) {
    if (unknown.length > 0) {
      anomaly(
        "new-destination",
        "high",
        `${deviceId} reached ${unknown.map(({ flow }) => `${flow.destination}:${flow.port}`).join(", ")}, never seen for it or its segment`,
        {
          seen: { destinations: unknown.map(({ flow }) => `${flow.destination}:${flow.port}/${flow.protocol}`) },
          baseline: {
            knownDestinations: Object.keys(baseline.destinations).length,
            segment: segment?.segment,
            segmentDestinations: segment ? Object.keys(segment.destinations).length : 0,
          },
          flows: unknown.map(({ flow }) => evidenceFlow(flow, observation.pepId)),
        },
      );
    }
  }

  const sd = Math.sqrt(baseline.bytesVar);
  const volumeThreshold = Math.max(
    settings.minVolumeBytes,
    baseline.bytesMean * settings.volumeFactor,
    baseline.bytesMean + settings.volumeSigmas * sd,
  );
  const spike = warm && bytes > volumeThreshold;
  if (spike) {
    anomaly("volume-spike", "medium", `${deviceId} sent ${bytes} bytes in one window, usually ${Math.round(baseline.bytesMean)}`, {
      seen: { bytes },
      baseline: { bytesMean: Math.round(baseline.bytesMean), bytesStdDev: Math.round(sd), threshold: Math.round(volumeThreshold) },
      flows: [...allowed]
        .sort((a, b) => b.bytes - a.bytes)
        .slice(0, 5)
        .map((flow) => evidenceFlow(flow, observation.pepId)),
    });
  }

  const deniedThreshold = Math.max(settings.minDenied, Math.ceil(baseline.deniedMean * settings.denyFactor));
  const burst = deniedCount >= deniedThreshold && (warm || baseline.windows >= 1);
  if (burst) {
    anomaly("denied-burst", "medium", `${deviceId} was denied ${deniedCount} times in one window`, {
      seen: { denied: deniedCount },
      baseline: { deniedMean: +baseline.deniedMean.toFixed(2), threshold: deniedThreshold },
      flows: [...denied]
        .sort((a, b) => b.count - a.count)
        .slice(0, 5)
        .map((flow) => evidenceFlow(flow, observation.pepId)),
    });
  }

  // What the window flagged does not teach the segment (review 132: the first device to reach an attacker's host taught
  // its fleet the host, and the next device to reach it raised nothing); a quorum of devices flagged for it does.
  const flagged = new Set(unknown.map(({ key }) => key));
  const segmentLearns = segment
    ? novel.map(({ key }) => key).filter((key) => segment.destinations[key] === undefined && !flagged.has(key))
    : [];
  const segmentFlags = segment && segmentWarm ? [...flagged] : [];
  const due = !baseline.learnedAt || Date.parse(at) - Date.parse(baseline.learnedAt) >= settings.minLearnIntervalMs;
  if (warm && novel.length === 0 && !due) return { baseline, anomalies, segmentLearns: [], segmentFlags: [], learned: false };

  const volume = spike
    ? { mean: baseline.bytesMean, variance: baseline.bytesVar }
    : ewma(baseline.bytesMean, baseline.bytesVar, bytes, baseline.windows, settings.alpha);
  const deniedMean = burst ? baseline.deniedMean : ewma(baseline.deniedMean, 0, deniedCount, baseline.windows, settings.alpha).mean;
  const next: DeviceBaseline = {
    ...baseline,
    windows: baseline.windows + 1,
    bytesMean: volume.mean,
    bytesVar: volume.variance,
    deniedMean,
    destinations: rememberRecent(
      baseline.destinations,
      keyed.map(({ key }) => key),
      minute,
      settings.maxDestinations,
    ),
    ...(segment ? { segment: segment.segment } : {}),
    learnedAt: at,
  };
  return { baseline: next, anomalies, segmentLearns: [...new Set(segmentLearns)], segmentFlags, learned: true };
}
