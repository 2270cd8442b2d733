/**
 * Throughput and latency of one decision function over a request pool, on the main thread
 * (one core).
 *
 * Throughput: three timed loops of `decisions / 3` calls each (or until their share of
 * `maxSeconds`), cycling through the pool; decisions/s is the median pass's calls / elapsed.
 * Latency: a second pass timing batches of `batch` consecutive calls with
 * process.hrtime.bigint(); each batch's time / batch is one per-decision sample, and
 * p50/p99 are over those samples. Batching amortizes the timer (~20-40 ns a read) over
 * sub-microsecond calls; it also averages within a batch, so a single slow call among
 * `batch` shows diluted. Slow engines use batch 1. Timer overhead is included, not subtracted.
 */

export interface Measurement {
  readonly name: string;
  readonly decisions: number;
  /** The median of three passes. */
  readonly perSecond: number;
  /** Each pass, slowest first. */
  readonly rates: readonly number[];
  readonly p50: number;
  readonly p99: number;
  readonly batch: number;
  /** Allowed decisions in the throughput passes. */
  readonly allowed: number;
}

export interface MeasureOptions {
  readonly decisions: number;
  readonly batch: number;
  readonly maxSeconds: number;
  /** Before timing: JIT tier-up (wasm too) and caches. Slow engines need seconds, not calls. */
  readonly warmSeconds: number;
  readonly latencySamples: number;
}

const now = () => process.hrtime.bigint();

export function measure(name: string, pool: number, decide: (i: number) => boolean, options: MeasureOptions): Measurement {
  const mask = pool - 1;
  const check = 1023;
  let sink = 0; // consumed below, so no pass can be optimized away

  const warmUntil = now() + BigInt(Math.round(options.warmSeconds * 1e9));
  for (let i = 0; i < options.decisions; i++) {
    if (decide(i & mask)) sink++;
    if ((i & check) === 0 && now() > warmUntil) break;
  }

  // Three passes over a third of the budget each; the median pass is reported, so a burst
  // of load from a co-tenant on the machine does not decide the figure.
  let allowed = 0;
  const rates: number[] = [];
  let calls = 0;
  for (let pass = 0; pass < 3; pass++) {
    const budget = Math.floor(options.decisions / 3);
    const deadline = BigInt(Math.round((options.maxSeconds * 0.65 * 1e9) / 3));
    const start = now();
    let done = 0;
    for (; done < budget; done++) {
      if (decide((calls + done) & mask)) allowed++;
      if ((done & check) === 0 && now() - start > deadline) break;
    }
    rates.push(done / (Number(now() - start) / 1e9));
    calls += done;
  }
  const perSecond = rates.sort((a, b) => a - b)[1]!;

  const samples = new Float64Array(options.latencySamples);
  const latencyDeadline = now() + BigInt(Math.round(options.maxSeconds * 0.35 * 1e9));
  let taken = 0;
  let i = 7919; // start elsewhere in the pool than the throughput pass
  for (; taken < samples.length; taken++) {
    const t0 = now();
    for (let j = 0; j < options.batch; j++) if (decide(i++ & mask)) sink++;
    const t1 = now();
    samples[taken] = Number(t1 - t0) / options.batch;
    if ((taken & 255) === 0 && t1 > latencyDeadline) {
      taken++;
      break;
    }
  }
  if (sink < 0) throw new Error("unreachable");
  const sorted = samples.slice(0, taken).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { name, decisions: calls, perSecond, rates, p50: at(0.5), p99: at(0.99), batch: options.batch, allowed };
}

const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function table(rows: readonly (Measurement & { note?: string })[]): string {
  const header = ["engine", "decisions", "decisions/s", "passes (slowest-fastest)", "p50 µs", "p99 µs", "batch", "note"];
  const body = rows.map((r) => [
    r.name,
    fmt(r.decisions),
    fmt(r.perSecond),
    `${fmt(r.rates[0]!)}-${fmt(r.rates[2]!)}`,
    fmt(r.p50 / 1000, 3),
    fmt(r.p99 / 1000, 3),
    String(r.batch),
    r.note ?? "",
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, c) => (c === 0 || c === 7 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(" | ")} |`;
  return [
    line(header),
    `|${widths.map((w, c) => (c === 0 || c === 7 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`,
    ...body.map(line),
  ].join("\n");
}
