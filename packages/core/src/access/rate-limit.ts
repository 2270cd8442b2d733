/**
 * Rate limits per API key and per ingestion source, and per tenant over all its credentials of a kind (the deployment's
 * `tenantRateLimits`), held across instances that share nothing
 * (many Lambda instances). Windows are fixed (`windowSeconds`, aligned to the epoch). Each
 * instance counts its admitted requests locally and adds them to the window's counter item in
 * DynamoDB (one UpdateItem ADD, which answers the new total) at the first request of a window,
 * then whenever it counted a tenth of the limit or `flushMs` passed: the store is written
 * O(instances x scopes) times per flush interval, not once per request. An instance decides
 * with the total it last learned plus what it admitted since.
 *
 * Staleness, stated: a window can admit up to one flush's worth more than its limit per other
 * instance (at most a tenth of the limit, or what arrives in `flushMs`); at limits of 10 or
 * fewer every request is counted in the store before it is decided, so the limit is exact.
 */
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { appliedRateLimits, tenantRateLimits, type TenantRateLimits } from "../config.ts";
import { SimrootError } from "../error.ts";
import type { Ports } from "../ports.ts";
import type { Role } from "./api-key.ts";
import { tenantSettings } from "./tenant-settings.ts";

export interface RateLimit {
  readonly limit: number;
  readonly windowSeconds: number;
}

export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the window resets (at least 1). */
  readonly resetSeconds: number;
  readonly windowSeconds: number;
}

interface Window {
  /** The total the store answered at the last flush (every instance's admitted requests). */
  global: number;
  /** Admitted here since then. */
  pending: number;
  lastFlush: number;
  /** When this instance last read the store's total without flushing (`eventCounts.total`). */
  lastRead?: number;
  flushing?: Promise<void>;
}

const flushMs = 1_000;
/** Windows remembered per process (the least recently used are forgotten). */
const maxWindows = 10_000;
const limiters = new WeakMap<object, Map<string, Window>>();

/** What counting needs: the store and the clock (the feed's authorizer has no more). */
export type CounterStore = Pick<Ports, "db" | "tables" | "now">;

const counterKey = (scope: string, window: number) => ({ pk: `rate#${scope}`, sk: String(window) });

/** When the current window of `rate` began (epoch ms). */
const windowStartOf = (ports: CounterStore, rate: RateLimit) =>
  Math.floor(ports.now().getTime() / (rate.windowSeconds * 1000)) * rate.windowSeconds * 1000;

/** The scope's current window as this process knows it (made, and remembered, when `create`), with its decision. */
function windowOf(ports: CounterStore, scope: string, rate: RateLimit, create: boolean, start = windowStartOf(ports, rate)) {
  let windows = limiters.get(ports.db);
  if (!windows) limiters.set(ports.db, (windows = new Map()));
  const now = ports.now().getTime();
  const windowMs = rate.windowSeconds * 1000;
  const id = `${scope}|${start}`;
  let window = windows.get(id);
  if (window) windows.delete(id);
  else if (create) window = { global: 0, pending: 0, lastFlush: 0 };
  else return undefined;
  windows.set(id, window);
  if (windows.size > maxWindows) windows.delete(windows.keys().next().value as string);
  const decision = (allowed: boolean): RateDecision => ({
    allowed,
    limit: rate.limit,
    // At most the limit: a request given back (`giveBack`) may leave this window's count below what the store holds.
    remaining: Math.min(rate.limit, Math.max(0, rate.limit - window.global - window.pending)),
    resetSeconds: Math.max(1, Math.ceil((start + windowMs - now) / 1000)),
    windowSeconds: rate.windowSeconds,
  });
  /** Counts `n` in the window, and adds them to the store's counter when a flush is due (then learns the others'). */
  const count = async (n = 1) => {
    window.pending += n;
    const due = window.lastFlush === 0 || window.pending >= Math.max(1, Math.floor(rate.limit / 10)) || now - window.lastFlush >= flushMs;
    if (due) await flush(ports, scope, start, rate, window);
  };
  return { window, decision, count };
}

/** Counts one request of `scope` (e.g. `key:<id>`, `source:<id>`) against its limit; a refused one is not counted. */
export async function takeRequest(ports: Ports, scope: string, rate: RateLimit, start?: number): Promise<RateDecision> {
  const { window, decision, count } = windowOf(ports, scope, rate, true, start)!;
  if (window.global + window.pending >= rate.limit) return decision(false);
  await count();
  // Others admitted meanwhile: this request is counted already, and refused only if it was over the limit in the store.
  if (window.global > rate.limit) return decision(false);
  return decision(true);
}

/**
 * Events of `scope` that are counted after the fact (failed authentications), across instances as requests are: `spent`
 * says, from this process's memory alone (no store read), whether the window's count reached the limit; `count` adds
 * one. An instance learns the others' counts when it flushes its own (at its first of a window, then as `takeRequest`
 * does), so an address may exceed the limit by a few events per instance that meets it, and no more.
 */
export const countedEvents = {
  spent(ports: CounterStore, scope: string, rate: RateLimit): RateDecision | undefined {
    const known = windowOf(ports, scope, rate, false);
    return known && known.window.global + known.window.pending >= rate.limit ? known.decision(false) : undefined;
  },
  /**
   * `holdFirst`: the scope's first event in this instance is only noted, and counted with its second (where scopes are
   * many and cheap to make, as a source id each: one written at its first event was a store write per id tried). The
   * notes are kept apart from the windows, and fewer (`maxHeld`): a spray of new scopes made the windows forget an
   * address's spent one every 10,000 ids, and each key's, whose next request wrote its counter again (review 93).
   */
  async count(ports: CounterStore, scope: string, rate: RateLimit, holdFirst = false): Promise<void> {
    const known = windowOf(ports, scope, rate, false);
    if (holdFirst && !known) {
      let held = heldFirsts.get(ports.db);
      if (!held) heldFirsts.set(ports.db, (held = new Set()));
      const id = `${scope}|${windowStartOf(ports, rate)}`;
      if (!held.delete(id)) {
        held.add(id);
        if (held.size > maxHeld) held.delete(held.values().next().value as string);
        return;
      }
    }
    const counted = known ?? windowOf(ports, scope, rate, true)!;
    // The first, held until now, is counted with this one.
    if (holdFirst && !known) counted.window.pending += 1;
    await counted.count();
  },
};

/**
 * Events of `scope` counted `n` at a time (a request's events), across instances as requests are, and the window's total
 * as far as this instance knows it: what the store answered at its last flush or read, and what it counted since. An
 * instance that has not learned the store's total within `flushMs` reads it (half a read unit) before answering.
 */
export const eventCounts = {
  async add(ports: CounterStore, scope: string, rate: RateLimit, n: number): Promise<void> {
    await windowOf(ports, scope, rate, true)!.count(n);
  },
  /** The window's total as this instance knows it, with no store request. */
  known(ports: CounterStore, scope: string, rate: RateLimit, before = 0): number {
    const start = windowStartOf(ports, rate) - before * rate.windowSeconds * 1000;
    const { window } = windowOf(ports, scope, rate, true, start)!;
    return window.global + window.pending;
  },
  /** `before`: of the window that many windows before the current one (1: the previous window). */
  async total(ports: CounterStore, scope: string, rate: RateLimit, before = 0): Promise<number> {
    const start = windowStartOf(ports, rate) - before * rate.windowSeconds * 1000;
    const { window } = windowOf(ports, scope, rate, true, start)!;
    const now = ports.now().getTime();
    if (now - Math.max(window.lastFlush, window.lastRead ?? 0) >= flushMs) {
      window.lastRead = now;
      const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: counterKey(scope, start) }));
      // The store's count only grows: a read older than a flush's answer does not lower it.
      window.global = Math.max(window.global, Number(Item?.count ?? 0));
    }
    return window.global + window.pending;
  },
};

/** First events noted, not counted yet (`countedEvents.count`'s `holdFirst`), per process; the oldest forgotten. */
const heldFirsts = new WeakMap<object, Set<string>>();
const maxHeld = 1_000;

async function flush(ports: CounterStore, scope: string, start: number, rate: RateLimit, window: Window): Promise<void> {
  while (window.flushing) await window.flushing;
  const count = window.pending;
  if (count === 0) return;
  window.pending -= count;
  window.lastFlush = ports.now().getTime();
  window.flushing = (async () => {
    try {
      const { Attributes } = await ports.db.send(
        new UpdateCommand({
          TableName: ports.tables.control,
          Key: counterKey(scope, start),
          UpdateExpression: "ADD #count :count SET expiresAt = if_not_exists(expiresAt, :expires)",
          ExpressionAttributeNames: { "#count": "count" },
          ExpressionAttributeValues: {
            ":count": count,
            ":expires": Math.ceil((start + rate.windowSeconds * 1000) / 1000) + 3600,
          },
          ReturnValues: "UPDATED_NEW",
        }),
      );
      window.global = Number(Attributes?.count ?? count);
    } catch (error) {
      // Not counted in the store: counted here still, and sent with the next flush.
      window.pending += count;
      throw error;
    } finally {
      window.flushing = undefined;
    }
  })();
  await window.flushing;
}

/** A request's decision under one of the policies that count it: its credential's (`default`) or its tenant's (`tenant`). */
export interface PolicyDecision extends RateDecision {
  readonly policy: "default" | "tenant";
}

/** A request's decisions under every policy that counted it: admitted only if each admitted it. */
export type RateDecisions = readonly PolicyDecision[];

export const admitted = (decisions: RateDecisions) => decisions.every((decision) => decision.allowed);

/**
 * RFC 9110 and draft-ietf-httpapi-ratelimit-headers: each policy and what is left of it, the credential's first (a list
 * of one item per policy, as the draft defines them); `Retry-After` when one refused, until the last refusing one resets.
 */
export function rateLimitHeaders(decisions: RateDecisions): Record<string, string> {
  const refused = decisions.filter((decision) => !decision.allowed);
  return {
    "ratelimit-policy": decisions.map((decision) => `"${decision.policy}";q=${decision.limit};w=${decision.windowSeconds}`).join(", "),
    ratelimit: decisions.map((decision) => `"${decision.policy}";r=${decision.remaining};t=${decision.resetSeconds}`).join(", "),
    ...(refused.length === 0 ? {} : { "retry-after": String(Math.max(...refused.map((decision) => decision.resetSeconds))) }),
  };
}

/** The 429 problem: when to come back, and the policy it broke (the one its `RateLimit` field leaves at `r=0`). */
export function rateLimited(decisions: RateDecisions): SimrootError {
  const broken = decisions.find((decision) => !decision.allowed) ?? decisions[0]!;
  const whose = broken.policy === "tenant" ? "the tenant's credentials of this kind together" : "this credential";
  return new SimrootError(
    "rate.limited",
    "input",
    `More than ${broken.limit} requests in ${broken.windowSeconds} s by ${whose}: retry in ${broken.resetSeconds} s`,
    { detail: { status: 429, retryAfter: broken.resetSeconds, headers: rateLimitHeaders(decisions) } },
  );
}

const minute = 60;

/** The tenant's limits, each held to the deployment's ceiling (a limit stored above one set or lowered later). */
async function heldLimits(ports: Ports, tenantId: string) {
  return appliedRateLimits((await tenantSettings(ports, tenantId)).rateLimits);
}

/**
 * Counts a request against its credential's limit, then, if admitted there, against what its tenant's credentials of its
 * kind may add up to (config.ts `tenantRateLimits`): a request its credential refused spends nothing of its tenant's.
 */
async function takeBoth(
  ports: Ports,
  tenantId: string,
  credential: string,
  limit: number,
  kind: keyof TenantRateLimits,
): Promise<RateDecisions> {
  const ownLimit = { limit, windowSeconds: minute };
  // The window the request is counted in, which a give-back takes it from (review 161: the minute could turn meanwhile).
  const start = windowStartOf(ports, ownLimit);
  const own = await takeRequest(ports, `${tenantId}#${credential}`, ownLimit, start);
  const tenantLimit = { limit: tenantRateLimits()[kind], windowSeconds: minute };
  // A request its credential refused is not counted, but still told what is left of its tenant's.
  const tenant = own.allowed
    ? await takeRequest(ports, `${tenantId}#tenant:${kind}`, tenantLimit)
    : windowOf(ports, `${tenantId}#tenant:${kind}`, tenantLimit, true)!.decision(true);
  return [
    // Refused by its tenant's limit: given back to its credential's count (`takeRequest` counts only what it admits).
    { ...(own.allowed && !tenant.allowed ? giveBack(ports, `${tenantId}#${credential}`, ownLimit, start) : own), policy: "default" },
    { ...tenant, policy: "tenant" },
  ];
}

/** Takes back one request `takeRequest` admitted in the window of `start`: off this count now, off the store's at its next flush. */
function giveBack(ports: CounterStore, scope: string, rate: RateLimit, start: number): RateDecision {
  const { window, decision } = windowOf(ports, scope, rate, true, start)!;
  window.pending -= 1;
  return decision(true);
}

/** Counts a request of an API key against its tenant's limit (enforcement point keys have their own), and its tenant's. */
export async function takeKeyRequest(ports: Ports, tenantId: string, keyId: string, role: Role): Promise<RateDecisions> {
  const rateLimits = await heldLimits(ports, tenantId);
  return role === "pep"
    ? takeBoth(ports, tenantId, `key:${keyId}`, rateLimits.pepKeyPerMinute, "pepKeysPerMinute")
    : takeBoth(ports, tenantId, `key:${keyId}`, rateLimits.apiKeyPerMinute, "apiKeysPerMinute");
}

/** Counts a webhook request of a source against its tenant's limit and its tenant's; throws the 429 past one, else answers what is left. */
export async function takeSourceRequest(ports: Ports, tenantId: string, sourceId: string): Promise<RateDecisions> {
  const rateLimits = await heldLimits(ports, tenantId);
  const decisions = await takeBoth(ports, tenantId, `source:${sourceId}`, rateLimits.sourcePerMinute, "sourcesPerMinute");
  if (!admitted(decisions)) throw rateLimited(decisions);
  return decisions;
}
