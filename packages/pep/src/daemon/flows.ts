/**
 * Flow reporting: decisions aggregated per window by (device, or source address when the
 * device is unknown; destination; port; protocol; decision; reason) with counts and bytes,
 * posted to the control plane's /v1/flows. Memory is bounded: a window holds at most
 * `maxFlowsPerWindow` distinct flows and at most `maxPendingReports` windows wait for an
 * unreachable control plane; what does not fit is dropped and counted, never queued.
 */
import { isIP } from "node:net";
import type { z } from "zod";
import { normalizeIp } from "../ip.ts";
import { refusedKeyPauseMs } from "../sync.ts";
import type { flowReportSchema } from "@simroot/core/feed/flows";
export interface FlowObservation {
  readonly deviceId?: string;
  readonly sourceIp?: string;
  readonly destination: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  readonly allow: boolean;
  readonly reason: string;
  readonly bytes: number;
}

/** One aggregated flow, exactly as the control plane's `POST /v1/flows` schema defines it. */
export type FlowRecord = z.output<typeof flowReportSchema>["flows"][number];

export interface FlowReport {
  readonly pepId: string;
  readonly windowStart: string;
  readonly windowEnd: string;
  readonly flows: readonly FlowRecord[];
}

export interface FlowReporterOptions {
  readonly url: string;
  readonly apiKey: string;
  readonly pepId: string;
  /** Window length; the reporter closes and sends a window this often once started. */
  readonly intervalMs?: number;
  /** The control plane takes at most 1000 flows per report. */
  readonly maxFlowsPerWindow?: number;
  readonly maxPendingReports?: number;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  readonly onError?: (error: unknown) => void;
}

export interface FlowStats {
  reports: number;
  flows: number;
  /** Decisions not reported: their window was full, or its report was dropped while the control plane was unreachable. */
  droppedDecisions: number;
  droppedReports: number;
  failedPosts: number;
}

const limit = (text: string, max: number) => (text.length > max ? text.slice(0, max) : text);

export class FlowReporter {
  readonly stats: FlowStats = { reports: 0, flows: 0, droppedDecisions: 0, droppedReports: 0, failedPosts: 0 };
  readonly #options: FlowReporterOptions;
  readonly #now: () => number;
  readonly #fetch: typeof fetch;
  readonly #maxFlows: number;
  /** Until when nothing is sent: the control plane refused the key (401, 403). */
  #refusedUntil = 0;
  readonly #maxPending: number;
  #window = new Map<string, FlowRecord>();
  #windowStart: number;
  readonly #pending: FlowReport[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> | undefined;

  constructor(options: FlowReporterOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#fetch = options.fetch ?? fetch;
    this.#maxFlows = Math.min(options.maxFlowsPerWindow ?? 1000, 1000);
    this.#maxPending = options.maxPendingReports ?? 6;
    this.#windowStart = this.#now();
  }

  record(flow: FlowObservation): void {
    const identity = flow.deviceId === undefined ? { sourceIp: reportedSource(flow.sourceIp) } : { deviceId: limit(flow.deviceId, 64) };
    const decision = flow.allow ? "allow" : "deny";
    const destination = limit(flow.destination, 253);
    const reason = limit(flow.reason, 64);
    const key = `${identity.deviceId ?? ""}\u0000${identity.sourceIp ?? ""}\u0000${destination}\u0000${flow.port}\u0000${flow.protocol}\u0000${decision}\u0000${reason}`;
    const bytes = Number.isSafeInteger(flow.bytes) && flow.bytes > 0 ? flow.bytes : 0;
    const existing = this.#window.get(key);
    if (existing) {
      existing.count++;
      existing.bytes += bytes;
      return;
    }
    if (this.#window.size >= this.#maxFlows) {
      this.stats.droppedDecisions++;
      return;
    }
    this.#window.set(key, { ...identity, destination, port: flow.port, protocol: flow.protocol, decision, reason, count: 1, bytes });
  }

  /** Closes the current window (when it holds flows) and sends what is pending, oldest first. */
  async flush(): Promise<void> {
    const now = this.#now();
    if (this.#window.size > 0) {
      this.#pending.push({
        pepId: this.#options.pepId,
        windowStart: new Date(this.#windowStart).toISOString(),
        windowEnd: new Date(now).toISOString(),
        flows: [...this.#window.values()],
      });
      this.#window = new Map();
      while (this.#pending.length > this.#maxPending) {
        const dropped = this.#pending.shift()!;
        this.stats.droppedReports++;
        this.stats.droppedDecisions += dropped.flows.reduce((sum, flow) => sum + flow.count, 0);
      }
    }
    this.#windowStart = now;
    // One sender at a time: a slow control plane must not stack up requests.
    this.#sending ??= this.#send().finally(() => (this.#sending = undefined));
    await this.#sending;
  }

  /** Reports waiting to be sent (the control plane was unreachable). */
  get pending(): number {
    return this.#pending.length;
  }

  start(): void {
    const interval = this.#options.intervalMs ?? 10_000;
    this.#timer ??= setInterval(() => void this.flush(), interval);
    this.#timer.unref();
  }

  /** Stops the timer and tries once to send what is left. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush().catch(() => {});
  }

  async #send(): Promise<void> {
    const base = this.#options.url.replace(/\/+$/, "");
    if (this.#now() < this.#refusedUntil) return;
    while (this.#pending.length > 0) {
      const report = this.#pending[0]!;
      try {
        const response = await this.#fetch(`${base}/v1/flows`, {
          method: "POST",
          headers: { authorization: `Bearer ${this.#options.apiKey}`, "content-type": "application/json" },
          body: JSON.stringify(report),
          signal: AbortSignal.timeout(10_000),
        });
        await response.body?.cancel();
        if (response.status >= 400 && response.status < 500 && response.status !== 429) {
          // The control plane will never take this report (it is malformed or we are not allowed): drop it.
          this.#pending.shift();
          this.stats.droppedReports++;
          this.stats.droppedDecisions += report.flows.reduce((sum, flow) => sum + flow.count, 0);
          this.#options.onError?.(new Error(`/v1/flows answered ${response.status}; report dropped`));
          // Its key refused: the next reports would be too. Nothing is sent for `refusedKeyPauseMs`, as the feed's sync
          // waits (each refusal counts against the site's address at the control plane, and PEPs behind it share the
          // count: review 91).
          if (response.status === 401 || response.status === 403) {
            this.#refusedUntil = this.#now() + refusedKeyPauseMs;
            return;
          }
          continue;
        }
        if (!response.ok) throw new Error(`/v1/flows answered ${response.status}`);
        this.#pending.shift();
        this.stats.reports++;
        this.stats.flows += report.flows.length;
      } catch (error) {
        this.stats.failedPosts++;
        this.#options.onError?.(error);
        return;
      }
    }
  }
}

/** A source as the control plane takes it: an address in one spelling, or `unknown` (a header that named no address). */
function reportedSource(source: string | undefined): string {
  const address = source === undefined ? "" : normalizeIp(source);
  return isIP(address) === 0 ? "unknown" : address;
}
