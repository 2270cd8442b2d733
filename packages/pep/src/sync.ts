/**
 * Keeps the replicated view in step with the control plane: long polls for the deltas after
 * the version held (`If-None-Match` makes an idle poll a 304 whose re-signed head only
 * extends freshness), takes a snapshot, every page of it, when there is no version yet or
 * the control plane answers 410, and backs off on errors. Nothing reaches the view before
 * `verify.ts` accepted it; every applied response is persisted before `onChange` fires.
 */
import type { KeyObject } from "node:crypto";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { headHeader, maxClockSkewSeconds, maxHeadLifetimeSeconds, type SignedHead } from "@simroot/core/feed/wire";
import { parseScope } from "@simroot/core/feed/scope";
import {
  addSnapshotPage,
  isFeedVerificationError,
  verifyIdleHead,
  verifyIdleSigned,
  verifyResponse,
  type SnapshotAssembly,
  type VerifiedResponse,
  type VerifyContext,
} from "./verify.ts";
import { saveState, type PepState, type ViewChange } from "./state.ts";
import { fetchGet, nodeGet, type FeedGet, type FeedReply } from "./transport.ts";
import { checkSnapshotEntries, checkSnapshotPages, feedLimits, parseFeedJson, type FeedLimits } from "./limits.ts";
import type { FeedTrigger } from "./push.ts";

export interface SyncChange extends ViewChange {
  /** `revocations`: revoked devices enforced from a snapshot page before the snapshot completed. */
  readonly kind: "snapshot" | "delta" | "revocations";
  readonly version: number;
}

export interface SyncOptions {
  /** The control plane's base URL, e.g. https://api.simroot.example. */
  readonly url: string;
  /** An API key with the `pep` role. */
  readonly apiKey: string;
  /** The pinned feed keys. */
  readonly publicKeys: readonly KeyObject[];
  readonly state: PepState;
  /** Narrow the feed to a site or segment: `key=value[,key=value]` (see the feed's `selector`). */
  readonly selector?: string;
  /** Where the state is saved after every applied response; omit to keep it in memory only. */
  readonly statePath?: string;
  /** The HTTP client; node:http(s) with keep-alive by default (see transport.ts). */
  readonly transport?: FeedGet;
  /** Shorthand for `transport: fetchGet(fetch)` (tests, proxies). */
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  /** A monotonic clock, ms (`performance.now` by default): the engine's, which counts a head's lifetime on it too. */
  readonly monotonic?: () => number;
  /** How far this PEP's clock may be off the control plane's, seconds (at most 2; default 1). */
  readonly clockSkewSeconds?: number;
  /**
   * Long-poll wait, seconds (the control plane allows up to 20). Capped at half the lifetime of
   * the last head, so a fresh head arrives before the one held expires.
   */
  readonly waitSeconds?: number;
  /** Entries asked for a page (1 to 5,000; default 1,000). */
  readonly limit?: number;
  /** What the PEP reads and holds of a response at most (`limits.ts`; the defaults fit any genuine feed). */
  readonly limits?: Partial<FeedLimits>;
  /**
   * Retries after a failure: full jitter from `initialMs` doubling up to `maxMs`, and at most a quarter of the head's
   * lifetime (2 s), so a control plane that recovers is seen before the view expires. After the control plane refused
   * the PEP's key (401, 403), which no retry mends, `refusedMs` (default 30 s, half of it at least); after a 429, its
   * `Retry-After`, at most `refusedMs`. Retried every 2 s, a PEP with a revoked key failed about 55 times a minute, past
   * the control plane's limit of failed authentications per address: every PEP behind the same address was refused.
   */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number; readonly refusedMs?: number };
  /**
   * Push instead of long polls (see push.ts): poll without waiting, then only when the trigger
   * says the head moved, or to refresh the signed head before it expires: every `idlePollSeconds`
   * at most, and at least every half lifetime of the head held (4 s for the control plane's 8 s heads).
   */
  readonly trigger?: FeedTrigger;
  /**
   * Ask for the deltas as a stream (`Accept: text/event-stream`): one connection carries every
   * change and the re-signed heads for `waitSeconds`, each event verified as a response would
   * be. A control plane that cannot stream (behind API Gateway) answers a long poll instead.
   */
  readonly stream?: boolean;
  readonly idlePollSeconds?: number;
  readonly onChange?: (change: SyncChange) => void;
  readonly onError?: (error: unknown) => void;
}

/** A status the control plane answered that is neither a feed response nor a 304/410. */
export class FeedHttpError extends Error {
  readonly status: number;
  /** The answer's `Retry-After`, seconds (a delay; not an HTTP date). */
  readonly retryAfterSeconds: number | undefined;
  constructor(status: number, body: string, retryAfter?: string) {
    super(`The feed answered ${status}: ${body.slice(0, 300)}`);
    this.name = "FeedHttpError";
    this.status = status;
    this.retryAfterSeconds = retryAfter !== undefined && /^\d{1,9}$/.test(retryAfter.trim()) ? Number(retryAfter) : undefined;
  }
}

/** A failed answer as an error, with its Retry-After. */
const httpError = async (response: FeedReply) =>
  new FeedHttpError(response.status, await response.text(), response.header("retry-after") ?? undefined);

export interface SyncStats {
  polls: number;
  applied: number;
  notModified: number;
  snapshots: number;
  /** Deltas applied from what a push notice carried (no request made for them). */
  pushed: number;
  /** Deltas a notice carried that did not verify or did not continue the view (a poll followed). */
  pushedRefused: number;
  errors: number;
  /** Responses refused by verification, by reason code. */
  rejected: Record<string, number>;
  lastError: string | undefined;
  lastSyncAt: string | undefined;
}

type StepResult = "snapshot" | "delta" | "idle";

export class FeedSync {
  readonly stats: SyncStats = {
    polls: 0,
    applied: 0,
    notModified: 0,
    snapshots: 0,
    pushed: 0,
    pushedRefused: 0,
    errors: 0,
    rejected: {},
    lastError: undefined,
    lastSyncAt: undefined,
  };
  readonly #options: SyncOptions;
  readonly #get: FeedGet;
  readonly #limits: FeedLimits;
  /** Refusals already counted in `stats.rejected` (one may pass several layers that count). */
  readonly #countedErrors = new WeakSet<Error>();
  readonly #now: () => number;
  readonly #monotonic: () => number;
  readonly #base: string;
  /** The canonical selector, or undefined for the whole tenant. */
  readonly #scope: string | undefined;
  readonly #skewMs: number;
  #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #needSnapshot: boolean;
  /** More deltas wait on the control plane (a response with `last` false): poll again without waiting. */
  #more = false;

  constructor(options: SyncOptions) {
    this.#options = options;
    this.#limits = { ...feedLimits, ...options.limits };
    this.#get = options.transport ?? (options.fetch ? fetchGet(options.fetch, this.#limits) : nodeGet(this.#limits));
    this.#now = options.now ?? Date.now;
    this.#monotonic = options.monotonic ?? (() => performance.now());
    this.#base = options.url.replace(/\/+$/, "");
    this.#scope = options.selector === undefined ? undefined : parseScope(options.selector).text;
    // Bound before the first snapshot: one key signs every tenant's feed, so a PEP that learned its tenant from the
    // first feed to arrive would enforce whichever genuine feed someone on the path handed it.
    if (options.state.tenantId === undefined) throw new Error("the PEP's tenant must be configured (--tenant) before it syncs");
    const skew = options.clockSkewSeconds ?? 1;
    if (!(skew >= 0 && skew <= maxClockSkewSeconds))
      throw new Error(`the clock-skew tolerance must be between 0 and ${maxClockSkewSeconds} s`);
    this.#skewMs = skew * 1000;
    // A view built for another selector (or none) is not this one's: start over from a snapshot.
    // A view kept while a snapshot was under way (its revocations enforced early) is taken again from a snapshot: the
    // deltas after its older version would bring views from before those revocations (review 65).
    this.#needSnapshot = options.state.version === 0 || options.state.scope !== this.#scope || options.state.snapshotPending;
  }

  /** Runs the sync loop until `stop()`. */
  start(): void {
    if (this.#loop) return;
    this.#stop = new AbortController();
    this.#loop = this.#run(this.#stop.signal);
  }

  /** Aborts the request in flight and waits for the loop to end. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    this.#loop = undefined;
  }

  /** One round: a snapshot when needed, else one (long) poll. Throws what the round failed with. */
  async step(signal: AbortSignal = this.#stop.signal): Promise<StepResult> {
    // A snapshot whose revocations were enforced early and that did not complete (however it was started) is taken again.
    if (this.#needSnapshot || this.#options.state.snapshotPending) {
      await this.snapshot(signal);
      return "snapshot";
    }
    return this.#poll(signal);
  }

  /** Takes a snapshot, every page, and replaces the view with it once all arrived and verified. */
  async snapshot(signal: AbortSignal = this.#stop.signal): Promise<void> {
    const { state } = this.#options;
    let assembly: SnapshotAssembly | undefined;
    let cursor: string | undefined;
    const limit = this.#options.limit ?? 1000;
    for (;;) {
      // Bounded even when signed (review 88): no request past the pages, no page past the entries, a snapshot may take.
      this.#checked(() => checkSnapshotPages(assembly?.pages ?? 0, limit, this.#limits));
      const query = new URLSearchParams({ limit: String(limit), ...this.#selector(), ...(cursor ? { cursor } : {}) });
      const response = await this.#request(`/v1/feed?${query}`, {}, signal, 30);
      if (response.status !== 200) throw await httpError(response);
      const body = await this.#json(response);
      this.#checked(() => checkSnapshotEntries(assembly?.entries.length ?? 0, body, this.#limits));
      const page = this.#checked(() => verifyResponse(body, this.#context(), "snapshot"));
      const progress = this.#checked(() => addSnapshotPage(assembly, page));
      if (progress.complete) {
        state.scope = this.#scope;
        const change = state.replaceWith(progress.entries);
        state.version = progress.version;
        state.epoch = page.head.epoch;
        this.#accept(progress.signed);
        this.#needSnapshot = false;
        this.#more = false;
        this.stats.snapshots++;
        await this.#applied({ ...change, kind: "snapshot", version: state.version });
        return;
      }
      assembly = progress.assembly;
      // Revocations come first in a snapshot: enforce them now, not once its last page arrived.
      const revoked = state.applyRevocations(page.entries, this.#now());
      if (revoked.devices > 0 || revoked.addresses > 0) {
        // Kept on disk too: a PEP restarted before the snapshot completes still denies them (revocation is terminal).
        await this.#save();
        this.#options.onChange?.({ kind: "revocations", version: state.version, devices: revoked.devices, bindings: 0, policy: false });
      }
      cursor = page.next;
      if (!cursor) throw new FeedHttpError(200, "a snapshot page that is not the last gave no cursor");
    }
  }

  async #poll(signal: AbortSignal): Promise<StepResult> {
    if (await this.#pushed()) return "delta";
    const { state } = this.#options;
    const streaming = this.#options.stream === true && !this.#options.trigger;
    const wait = this.#more || this.#options.trigger ? 0 : streaming ? this.#streamWait() : this.#wait();
    const query = new URLSearchParams({
      since: String(state.version),
      wait: String(wait),
      limit: String(this.#options.limit ?? 1000),
      ...this.#selector(),
    });
    this.stats.polls++;
    const accept: Record<string, string> = streaming ? { accept: "text/event-stream, application/json" } : {};
    const response = await this.#request(`/v1/feed?${query}`, { "if-none-match": `"${state.version}"`, ...accept }, signal, wait + 15);
    if (response.status === 200 && /^text\/event-stream\b/.test(response.header("content-type") ?? "")) return this.#follow(response);
    if (response.status === 304) {
      await response.discard();
      const header = response.header(headHeader);
      const signed = this.#checked(() => verifyIdleHead(header ?? "", this.#context()));
      this.#accept(signed);
      this.#more = false;
      this.stats.notModified++;
      this.stats.lastSyncAt = new Date(this.#now()).toISOString();
      return "idle";
    }
    if (response.status === 410) {
      await response.discard();
      this.#needSnapshot = true;
      return this.step(signal);
    }
    if (response.status !== 200) throw await httpError(response);
    await this.#delta(await this.#json(response));
    return "delta";
  }

  /**
   * Applies the signed delta the last notice carried, when it verifies as a polled one would, continues the version
   * held and expires no sooner than the head held. One that does not (another selector, a version this PEP does not
   * hold, a forged, expired or older head) changes nothing and is not held against the feed: the poll that follows
   * decides (a refusal here never forces a snapshot).
   */
  async #pushed(): Promise<boolean> {
    const { state, trigger } = this.#options;
    const carried = state.tenantId && !this.#more ? trigger?.take?.(state.tenantId, state.version) : undefined;
    if (carried === undefined) return false;
    let verified: VerifiedResponse;
    try {
      verified = verifyResponse(carried, this.#context(), "delta");
    } catch {
      this.stats.pushedRefused++;
      return false;
    }
    // Signed when it was sent, perhaps long before it arrived (a Lambda frozen with it): a head that expires before the
    // one held would shorten the view's freshness, so the poll brings the change with a head as fresh as any.
    if (Date.parse(verified.head.expiresAt) < Date.parse(state.head?.head.expiresAt ?? "")) {
      this.stats.pushedRefused++;
      return false;
    }
    this.stats.pushed++;
    await this.#applyDelta(verified);
    return true;
  }

  /** Verifies and applies one delta response (polled or streamed): it must continue the version held. */
  async #delta(body: unknown): Promise<void> {
    await this.#applyDelta(this.#checked(() => verifyResponse(body, this.#context(), "delta")));
  }

  async #applyDelta(verified: VerifiedResponse): Promise<void> {
    const { state } = this.#options;
    const change = state.apply(verified.entries);
    state.version = verified.head.version;
    this.#accept(verified.signed);
    this.#more = !verified.head.last;
    await this.#applied({ ...change, kind: "delta", version: state.version });
  }

  /**
   * Follows a streamed feed until it ends: every `deltas` event is checked as a poll's response
   * would be (signature, tenant, freshness, continuity from the version held), every `head`
   * event as an idle poll's head. The first refusal ends the stream (the connection is closed).
   */
  async #follow(response: FeedReply): Promise<StepResult> {
    try {
      return await this.#followEvents(response);
    } catch (error) {
      // An event past the bounds is refused by the stream's parser.
      throw this.#counted(error);
    }
  }

  async #followEvents(response: FeedReply): Promise<StepResult> {
    let result: StepResult = "idle";
    let events = 0;
    for await (const { event, data } of response.events()) {
      events++;
      this.stats.polls++;
      if (event === "snapshot_required") {
        this.#needSnapshot = true;
        break;
      }
      let parsed: unknown;
      try {
        parsed = parseFeedJson(data, this.#limits);
      } catch (error) {
        if (isFeedVerificationError(error)) throw this.#counted(error);
        parsed = undefined;
      }
      if (event === "deltas") {
        await this.#delta(parsed);
        result = "delta";
      } else if (event === "head") {
        this.#accept(this.#checked(() => verifyIdleSigned(parsed, this.#context())));
        this.stats.notModified++;
        this.stats.lastSyncAt = new Date(this.#now()).toISOString();
      }
    }
    // A healthy stream carries a head at least every few seconds: one that ends with none failed (back off).
    if (events === 0) throw new FeedHttpError(200, "the feed stream ended without an event");
    // Its time was up (or the control plane went away): the next poll opens the next stream.
    this.#more = false;
    return result;
  }

  /** A stream's length: the configured wait (heads arrive within it; the control plane allows 20 s). */
  #streamWait(): number {
    return Math.max(1, Math.min(this.#options.waitSeconds ?? 20, 20));
  }

  /** Holds `signed` as the view's head, verified now (see `PepState.accept`). */
  #accept(signed: SignedHead) {
    this.#options.state.accept(signed, this.#now(), this.#monotonic());
  }

  async #applied(change: SyncChange) {
    this.stats.applied++;
    this.stats.lastSyncAt = new Date(this.#now()).toISOString();
    await this.#save();
    this.#options.onChange?.(change);
  }

  async #save() {
    if (!this.#options.statePath) return;
    try {
      await saveState(this.#options.statePath, this.#options.state);
    } catch (error) {
      this.#options.onError?.(error);
    }
  }

  #context(): VerifyContext {
    const { state, publicKeys } = this.#options;
    const scope = this.#scope ? { scope: this.#scope } : {};
    return {
      publicKeys,
      tenantId: state.tenantId!,
      version: state.version,
      epoch: state.epoch,
      now: this.#now(),
      skewMs: this.#skewMs,
      ...scope,
    };
  }

  /** The long-poll wait: the configured one, at most half the lifetime of the head held (a head expires a poll later). */
  #wait(): number {
    // 20 s at most: the feed's longest long poll (core `timeouts.feedWaitSeconds`), answered inside the gateway's 30 s.
    return Math.max(0, Math.min(this.#options.waitSeconds ?? 20, this.#halfLifetime()));
  }

  /**
   * How long a PEP on the push channel waits for a notice before it polls anyway: until half the held head's lifetime
   * is left (counted from its expiry, so a head that arrived already aged is renewed sooner), at least 1 s, at most
   * `idlePollSeconds`. The poll then has that half lifetime to be answered before the view would expire.
   */
  #idleMs(): number {
    const idleMs = (this.#options.idlePollSeconds ?? 20) * 1000;
    const expiresAt = Date.parse(this.#options.state.head?.head.expiresAt ?? "");
    if (!Number.isFinite(expiresAt)) return Math.min(idleMs, 1000);
    const untilHalf = expiresAt - this.#now() - this.#halfLifetime() * 1000;
    return Math.max(1000, Math.min(idleMs, untilHalf));
  }

  /** Half the lifetime of the head held, whole seconds: a head fetched now is refreshed before it expires. */
  #halfLifetime(): number {
    const head = this.#options.state.head?.head;
    const lifetime = head ? (Date.parse(head.expiresAt) - Date.parse(head.issuedAt)) / 1000 : maxHeadLifetimeSeconds;
    return Math.floor(Math.min(Number.isFinite(lifetime) ? lifetime : maxHeadLifetimeSeconds, maxHeadLifetimeSeconds) / 2);
  }

  #selector(): Record<string, string> {
    return this.#scope === undefined ? {} : { selector: this.#scope };
  }

  /** Runs a verification, counting a refusal by its reason; a gap is healed by a snapshot next round. */
  #checked<T>(check: () => T): T {
    try {
      return check();
    } catch (error) {
      throw this.#counted(error);
    }
  }

  /** Counts a refusal by its reason (a gap or a newer epoch: a snapshot next round); returns `error`. */
  #counted(error: unknown): unknown {
    if (isFeedVerificationError(error) && !this.#countedErrors.has(error)) {
      this.#countedErrors.add(error);
      this.stats.rejected[error.code] = (this.stats.rejected[error.code] ?? 0) + 1;
      if (error.code === "feed.gap" || error.code === "feed.epoch") this.#needSnapshot = true;
    }
    return error;
  }

  /** A response's JSON, read and parsed within the limits (a refusal counted as a verification's). */
  async #json(response: FeedReply): Promise<unknown> {
    try {
      return await response.json();
    } catch (error) {
      throw this.#counted(error);
    }
  }

  #request(path: string, headers: Record<string, string>, signal: AbortSignal, timeoutSeconds: number): Promise<FeedReply> {
    return this.#get({
      url: `${this.#base}${path}`,
      headers: { authorization: `Bearer ${this.#options.apiKey}`, accept: "application/json", ...headers },
      signal,
      timeoutMs: timeoutSeconds * 1000,
    });
  }

  async #run(signal: AbortSignal): Promise<void> {
    const backoff = this.#options.backoff ?? { initialMs: 250, maxMs: 30_000 };
    let failures = 0;
    while (!signal.aborted) {
      try {
        const result = await this.step(signal);
        failures = 0;
        const { trigger, state } = this.#options;
        if (trigger && state.tenantId && result !== "snapshot" && !this.#more) {
          // No notice: poll anyway before the head held expires (else the PEP fails closed while nothing changes).
          await trigger.wait(state.tenantId, state.version, this.#idleMs(), signal);
        }
        // Let the HTTP client take the finished connection back first (an injected fetch, undici,
        // frees it only on a later turn), so the next poll reuses it instead of dialing (and, over
        // TLS, handshaking) a new connection for every change.
        await nextTurn();
      } catch (error) {
        if (signal.aborted) break;
        failures++;
        this.stats.errors++;
        this.stats.lastError = error instanceof Error ? error.message : String(error);
        this.#options.onError?.(error);
        await sleep(pauseAfter(error, failures, backoff), undefined, { signal }).catch(() => {});
      }
    }
  }
}

/** How long the PEP sends nothing after the control plane refused its key (401, 403) by default: feed polls, flow reports. */
export const refusedKeyPauseMs = 30_000;

/** How long to wait after the `failures`-th failure in a row, `error` (see `SyncOptions.backoff`). */
function pauseAfter(error: unknown, failures: number, backoff: NonNullable<SyncOptions["backoff"]>): number {
  const refusedMs = backoff.refusedMs ?? refusedKeyPauseMs;
  if (error instanceof FeedHttpError && (error.status === 401 || error.status === 403))
    return refusedMs / 2 + (Math.random() * refusedMs) / 2;
  // Full jitter, capped below the head lifetime so a recovered control plane is seen before the view would expire.
  const ceiling = Math.min(backoff.maxMs, maxHeadLifetimeSeconds * 250, backoff.initialMs * 2 ** Math.min(failures - 1, 16));
  const jittered = backoff.initialMs / 2 + Math.random() * ceiling;
  const asked = error instanceof FeedHttpError && error.status === 429 ? error.retryAfterSeconds : undefined;
  return asked === undefined ? jittered : Math.max(jittered, Math.min(asked * 1000, refusedMs));
}
