/**
 * Anomalies: what the detectors flag, with the evidence behind each (what was seen, the
 * baseline it broke, the flows or facts that showed it). Each becomes an `anomaly.detected`
 * event, committed through the ledger (audited) and published for automation rules.
 */
import * as z from "zod";

export const anomalyKinds = [
  "new-destination",
  "volume-spike",
  "denied-burst",
  "geofence",
  "imei-change",
  "sim-swap",
  "unexpected-bearer",
  "profile-switch",
] as const;
export type AnomalyKind = (typeof anomalyKinds)[number];

export const anomalySeverities = ["low", "medium", "high"] as const;

export const anomalySchema = z
  .object({
    kind: z.enum(anomalyKinds),
    deviceId: z.string(),
    severity: z.enum(anomalySeverities),
    summary: z.string(),
    /** When the behaviour was seen (the flow window's end, the fact's time). */
    observedAt: z.string(),
    evidence: z.object({
      seen: z.record(z.string(), z.unknown()).meta({ description: "what was observed" }),
      baseline: z.record(z.string(), z.unknown()).meta({ description: "the learned (or configured) baseline it broke" }),
      flows: z.array(z.record(z.string(), z.unknown())).optional().meta({ description: "the flow records behind it" }),
      facts: z.array(z.record(z.string(), z.unknown())).optional().meta({ description: "the applied events or reported facts behind it" }),
    }),
  })
  .meta({ id: "Anomaly" });
export type Anomaly = z.output<typeof anomalySchema>;

/** How the detectors judge; defaults chosen on the synthetic fleet trace (bench/detect). */
export interface DetectorSettings {
  /** Windows a device must have reported before its own baseline judges it. */
  readonly warmupWindows: number;
  /** And time since its first report (a baseline covers at least one daily cycle). */
  readonly warmupMs: number;
  /** Most destinations remembered per device (least recently seen evicted). */
  readonly maxDestinations: number;
  /** Most destinations remembered per segment. */
  readonly maxSegmentDestinations: number;
  /**
   * Distinct devices of a warm segment flagged for one new destination before the segment learns it (a rollout reaches
   * the fleet; an attacker's host taught by its first device would hide its next ones).
   */
  readonly segmentQuorum: number;
  /** Most bearers remembered per device. */
  readonly maxBearers: number;
  /** EWMA weight of a new window. */
  readonly alpha: number;
  /** A window's bytes must exceed `volumeFactor` x the mean ... */
  readonly volumeFactor: number;
  /** ... and the mean plus `volumeSigmas` standard deviations ... */
  readonly volumeSigmas: number;
  /** ... and this floor. */
  readonly minVolumeBytes: number;
  /** Denied attempts in one window that make a burst (at least), or `denyFactor` x the usual. */
  readonly minDenied: number;
  readonly denyFactor: number;
  /**
   * Once warm, a baseline learns from one window per this interval (a time subsample, so the
   * averages stay unbiased) unless the window taught it a destination: writes per device drop
   * from one per report to one per interval. Every window is still judged.
   */
  readonly minLearnIntervalMs: number;
}

export const defaultDetectorSettings: DetectorSettings = {
  warmupWindows: 12,
  warmupMs: 24 * 60 * 60 * 1000,
  maxDestinations: 32,
  maxSegmentDestinations: 256,
  segmentQuorum: 3,
  maxBearers: 4,
  alpha: 0.05,
  volumeFactor: 8,
  volumeSigmas: 6,
  minVolumeBytes: 64 * 1024,
  minDenied: 20,
  denyFactor: 10,
  minLearnIntervalMs: 30 * 60 * 1000,
};
