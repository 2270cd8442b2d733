/**
 * Baselines: what a device (and its segment) usually does, learned incrementally from the
 * flows reported for it. Bounded by construction: a fixed set of running statistics (EWMA of
 * bytes and denied attempts per window), at most `maxDestinations` destinations (least
 * recently seen evicted) and `maxBearers` bearers. Pure values; `baseline-store.ts` keeps them.
 */
import { createHash } from "node:crypto";
import type { DetectorSettings } from "./model.ts";

export interface DeviceBaseline {
  readonly deviceId: string;
  /** The first window or fact this baseline learned from. */
  readonly since: string;
  /** Windows learned from. */
  readonly windows: number;
  readonly bytesMean: number;
  readonly bytesVar: number;
  readonly deniedMean: number;
  /** Destination key (hashed, see `destinationKey`) -> when last seen, in epoch minutes. */
  readonly destinations: Readonly<Record<string, number>>;
  readonly bearers: readonly string[];
  /** The device's segment (its `segment` or `fleet` label) when last read. */
  readonly segment?: string;
  /** When the baseline last learned from a window (it learns at most every `minLearnIntervalMs` once warm). */
  readonly learnedAt?: string;
  /** Optimistic concurrency: the stored revision this value was read at (0 when new). */
  readonly revision: number;
}

export interface SegmentBaseline {
  readonly segment: string;
  readonly since: string;
  readonly destinations: Readonly<Record<string, number>>;
}

export const emptyBaseline = (deviceId: string, at: string): DeviceBaseline => ({
  deviceId,
  since: at,
  windows: 0,
  bytesMean: 0,
  bytesVar: 0,
  deniedMean: 0,
  destinations: {},
  bearers: [],
  revision: 0,
});

/** A destination as the baselines remember it: 12 base64url characters of SHA-256, so an item stays under 1 KB. */
export const destinationKey = (destination: string, port: number, protocol: string) =>
  createHash("sha256").update(`${destination.toLowerCase()}|${port}|${protocol}`).digest("base64url").slice(0, 12);

export const epochMinutes = (at: string) => Math.floor(Date.parse(at) / 60_000);

/** Whether a baseline has learned enough to judge. */
export function isWarm(baseline: DeviceBaseline, at: string, settings: DetectorSettings): boolean {
  return baseline.windows >= settings.warmupWindows && Date.parse(at) - Date.parse(baseline.since) >= settings.warmupMs;
}

export const isSegmentWarm = (segment: SegmentBaseline | undefined, at: string, settings: DetectorSettings) =>
  segment !== undefined && Date.parse(at) - Date.parse(segment.since) >= settings.warmupMs;

/** Adds (or refreshes) keys, evicting the least recently seen beyond `max`. */
export function rememberRecent(map: Readonly<Record<string, number>>, keys: readonly string[], minute: number, max: number) {
  const next: Record<string, number> = { ...map };
  for (const key of keys) next[key] = minute;
  const entries = Object.entries(next);
  if (entries.length <= max) return next;
  entries.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  return Object.fromEntries(entries.slice(0, max));
}

/** One EWMA step; the first windows take the running mean so a baseline converges fast. */
export function ewma(mean: number, variance: number, value: number, n: number, alpha: number) {
  const weight = Math.max(alpha, 1 / (n + 1));
  const delta = value - mean;
  const nextMean = mean + weight * delta;
  const nextVar = (1 - weight) * (variance + weight * delta * delta);
  // Kept as numbers the store takes exactly (review 132: a window of 400 MB after one of 10 kB made a variance of 4e16,
  // which the store refused, and the report was answered 500): a spread past 95 MB a window counts as 95 MB.
  return { mean: Math.min(nextMean, Number.MAX_SAFE_INTEGER), variance: Math.min(nextVar, Number.MAX_SAFE_INTEGER) };
}
