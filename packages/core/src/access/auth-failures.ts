/**
 * Failed authentications per client address, counted before any work and across instances (review 89). Every request
 * with bad credentials costs a store read and a signature or hash check (ingestion runs every format's check on a
 * refusal, on purpose), and nothing limited them before authentication: rate limits count a key's or a source's
 * requests once authenticated. Past `failures` answers 401 to one address within `windowSeconds`, its requests are
 * answered 429 problem+json with `Retry-After`, before anything is read, until the window ends; a success does not
 * reset the count.
 *
 * Counted as rate limits are (`rate-limit.ts` `countedEvents`): each instance counts in memory and adds its count to the
 * window's counter item at its first failure of an address (its second, for a source: `countFailure`), then every
 * tenth of the limit or second, learning the others' then; the check itself reads nothing. So an instance that meets an address lets it fail a few times more than
 * the limit (the first failure it meets, and those before its next flush), not N times the limit as counts per process
 * did, though a client spreading its requests over many instances gets those few at each. A failure costs one counter
 * write at most (fewer in bursts), and an address a counter item per window (kept an hour). An IPv6 address counts by
 * its /56. Only requests that present a credential are held to it (api middleware.ts, `limitFailedAuthentications`).
 *
 * Loopback clients are not counted unless `loopback` says so: on a laptop every client (the console, the demo, local
 * PEPs) shares 127.0.0.1, and one PEP left polling with a revoked key would lock all of them out, while a client on the
 * machine itself has cheaper ways to load it.
 */
import { SimrootError } from "../error.ts";
import { parseIpInto } from "../policy/net.ts";
import type { Ports } from "../ports.ts";
import { countedEvents, type CounterStore, type RateDecision } from "./rate-limit.ts";

export interface AuthFailureLimit {
  /** Failed authentications an address may have in a window (0: no limit). */
  readonly failures: number;
  readonly windowSeconds: number;
  /** Count loopback clients too (127.0.0.0/8, ::1). */
  readonly loopback?: boolean;
}

const defaultAuthFailureLimit: AuthFailureLimit = { failures: 20, windowSeconds: 60 };

/** `SIMROOT_AUTH_FAILURES_PER_MINUTE` (0 turns the limit off), else the default. */
export function authFailureLimitFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): AuthFailureLimit {
  const failures = Number(env.SIMROOT_AUTH_FAILURES_PER_MINUTE ?? defaultAuthFailureLimit.failures);
  return { ...defaultAuthFailureLimit, failures: Number.isFinite(failures) && failures >= 0 ? failures : defaultAuthFailureLimit.failures };
}

const isLoopback = (address: string) => address === "::1" || /^(::ffff:)?127\./i.test(address);

const words = new Uint32Array(4);
const hex = (word: number) => `${(word >>> 16).toString(16)}:${(word & 0xffff).toString(16)}`;

/**
 * An IPv4 address as it is (an IPv4-mapped IPv6 one too); an IPv6 one by its /56, what one site or household is given
 * (review 91: by its /64, a /56 held 256 counts of its own); anything else as it is.
 */
function clientKey(address: string): string {
  const family = parseIpInto(address.split("%")[0]!, words);
  if (family === 6) return `${hex(words[0]!)}:${hex(words[1]! & 0xffffff00)}::/56`;
  return family === 4 ? [24, 16, 8, 0].map((shift) => (words[0]! >>> shift) & 255).join(".") : address;
}

/** True when the address is counted at all under `limit`. */
export const countsFailures = (limit: AuthFailureLimit | undefined, address: string | undefined): address is string =>
  limit !== undefined && limit.failures > 0 && address !== undefined && address !== "" && (limit.loopback === true || !isLoopback(address));

const rateOf = (limit: AuthFailureLimit) => ({ limit: limit.failures, windowSeconds: limit.windowSeconds });
/** `within` narrows the count below the address: `source:<id>` for the deliveries to one ingestion source. */
const scopeOf = (address: string, within: string) => `authfail:${clientKey(address)}${within ? `|${within}` : ""}`;

/**
 * The 429 to answer when the address has spent its failures in this window (known to this instance), else undefined;
 * `within` as `countFailure`'s.
 */
export function failuresSpent(ports: Ports, address: string, limit: AuthFailureLimit, within = ""): SimrootError | undefined {
  const spent = countedEvents.spent(ports, scopeOf(address, within), rateOf(limit));
  return spent && tooManyFailures(spent, limit);
}

/**
 * Counts one failed authentication of the address (and of `within` it: one source's deliveries). A source's first
 * failure at this instance is kept in memory, written with its second: any path names a source id, and each new one
 * written at its first failure was a store write per request, from a client holding no credential, that no limit bounded
 * (a new id is never spent). A source id tried once per instance is so never written, and one tried again is counted
 * as before; ids that exist and ids that do not are counted alike (review 83: nothing tells them apart).
 */
export const countFailure = (ports: Ports, address: string, limit: AuthFailureLimit, within = ""): Promise<void> =>
  countedEvents.count(ports, scopeOf(address, within), rateOf(limit), within !== "");

/**
 * Failed authentications of one API key where no client address is known: AWS IoT Core names none to a custom authorizer
 * (its request holds the MQTT client id, user name and password, the TLS server name and a connection id), and the feed
 * channel's authorizer (feed/subscriber-authorizer.ts) read the key again for each wrong secret, however many client
 * ids carried them. Counted as an address's are, a key's first failure at an instance held (ids that name no key are as
 * cheap to make as source ids). A key past its failures is not refused: anyone may fail with its id, and refusing it
 * would lock its PEPs out; it is checked as this instance holds it (`authenticate`'s `readAgain: false`, read at most
 * once a second), and a wrong secret is not counted further, so it costs the store nothing for the rest of the window.
 */
const keyScopeOf = (keyId: string) => `authfail:key:${keyId}`;

/** True when the key has spent its failures in this window (known to this instance); never under a limit of 0. */
export const keyFailuresSpent = (ports: CounterStore, keyId: string, limit: AuthFailureLimit): boolean =>
  limit.failures > 0 && countedEvents.spent(ports, keyScopeOf(keyId), rateOf(limit)) !== undefined;

/** Counts one failed authentication with the key's id (a wrong secret, or an id that names no key). */
export const countKeyFailure = async (ports: CounterStore, keyId: string, limit: AuthFailureLimit): Promise<void> => {
  if (limit.failures > 0) await countedEvents.count(ports, keyScopeOf(keyId), rateOf(limit), true);
};

function tooManyFailures(decision: RateDecision, limit: AuthFailureLimit): SimrootError {
  return new SimrootError(
    "auth.too_many_failures",
    "input",
    `More than ${limit.failures} failed authentications from this address in ${limit.windowSeconds} s: retry in ${decision.resetSeconds} s`,
    { detail: { status: 429, retryAfter: decision.resetSeconds, headers: { "retry-after": String(decision.resetSeconds) } } },
  );
}
