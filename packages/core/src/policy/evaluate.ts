/**
 * The decision procedure. Pure: no I/O, no clock (the instant is `input.at`, and a revoked grant's end was fixed when
 * the policy was compiled: compile.ts); the caches below only remember what was computed from the policy and the request.
 *
 * Evaluation order, first match wins:
 *   1. device revoked                           -> deny.revoked
 *   2. device suspended                         -> deny.suspended
 *   3. device quarantined: only the quarantine destinations, whatever the rules and grants
 *      say (a deny rule does not block the remediation path)
 *                                              -> allow.quarantine | deny.quarantined
 *   4. an applicable deny rule matches          -> deny.rule (the first such rule in set order)
 *      A rule applies when its selector matches the device labels; it matches when one of
 *      its destinations covers the host or address, port and protocol and all its conditions
 *      (bearer, country, schedule in its time zone) hold. Deny rules bind third-party
 *      sessions too.
 *   5. no principal (the device's own traffic):
 *      an applicable allow rule matches         -> allow.rule (the first such rule)
 *   5'. a principal (a third party under a grant): rules never allow; a grant of that
 *      principal, active at `at` (notBefore <= at < notAfter, and at < revokedAt and at < the time the policy was
 *      compiled, for a revoked one: its revokedAt is the revoking instance's clock), whose
 *      target is the device id or a selector matching its labels, covers the destination
 *                                              -> allow.grant (the first such grant;
 *                                                 sessionRecording tells the PEP to record)
 *   6. otherwise                                -> deny.default
 * A request naming both an ip and an fqdn matches a destination by either: an allow on the
 * name is still overridden by a deny on the address. Unknown device states deny (deny.default).
 *
 * Hot path: which selectors match a label set is computed once per label set and cached
 * (by the canonical label key, and by object identity when the labels object is frozen, so
 * a PEP that freezes its device records skips building the key); candidate rules come from
 * the destination index (hash probes, one trie walk); conditions are a bitmask test, a set
 * probe and a minute-of-week bitmap read (zone offsets cached per hour); the returned
 * decisions are prebuilt and frozen. A decision allocates nothing.
 */
import { bearers } from "../catalogue/catalogue.ts";
import type { CompiledPolicy, CompiledRule, PolicyEngine } from "./compile.ts";
import { destinationMatches, portAllowed, Target, type CompiledDestination } from "./destination.ts";
import type { CandidateSink, IndexEntry } from "./destination-index.ts";
import type { Decision, DecisionInput, EnforcementSettings } from "./model.ts";
import { labelSetKey, type Labels } from "./selector.ts";

/** Bit of each bearer in a rule's bearer mask. */
export const bearerBits: ReadonlyMap<string, number> = new Map(bearers.map((bearer, i) => [bearer, 1 << i]));

const fixed = (allow: boolean, reason: Decision["reason"], explanation: string): Decision => Object.freeze({ allow, reason, explanation });

export const fixedDecisions = {
  revoked: fixed(false, "deny.revoked", "the device is revoked: every connection is denied"),
  suspended: fixed(false, "deny.suspended", "the device is suspended: every connection is denied until it is reinstated"),
  quarantineAllowed: fixed(true, "allow.quarantine", "the device is quarantined and this is one of the quarantine destinations"),
  quarantined: fixed(false, "deny.quarantined", "the device is quarantined: only the quarantine destinations are reachable"),
  noRule: fixed(false, "deny.default", "no allow rule for this device matches this connection (default deny)"),
  noGrant: fixed(false, "deny.default", "no active grant of this principal covers this device and destination (default deny)"),
  unknownState: fixed(false, "deny.default", "the device state is unknown (default deny)"),
  failClosed: fixed(false, "deny.fail-closed", "the enforcement point could not decide and fails closed"),
  failOpen: fixed(true, "allow.fail-open", "the enforcement point could not decide and fails open"),
} as const;

/** What a PEP applies when it has no policy or evaluation failed. */
export const failDecision = (failMode: EnforcementSettings["failMode"]): Decision =>
  failMode === "open" ? fixedDecisions.failOpen : fixedDecisions.failClosed;

/**
 * `engine.decide(input)`, or the engine's fail decision when the input is malformed
 * (decide throws). For PEPs, which must answer every connection.
 */
export function decideOrFail(engine: PolicyEngine, input: DecisionInput): Decision {
  try {
    return engine.decide(input);
  } catch {
    return stateDecision(input.device.state) ?? engine.failDecision;
  }
}

/**
 * What a device's state decides whatever the policy says, as an engine decides it first: a revoked, suspended or
 * quarantined device is denied (a quarantined one reaches its quarantine destinations only through an engine that
 * holds them). Undefined for an active device. Where no engine decides (a policy set that does not compile, a request
 * it cannot read), the tenant's fail mode is for active devices only (review 122: a PEP whose policy set did not compile
 * let a revoked device through on `open`).
 */
export function stateDecision(state: string): Decision | undefined {
  if (state === "active") return undefined;
  if (state === "revoked") return fixedDecisions.revoked;
  if (state === "suspended") return fixedDecisions.suspended;
  if (state === "quarantined") return fixedDecisions.quarantined;
  return fixedDecisions.unknownState;
}

/** Label sets remembered per engine before the cache is emptied. */
const maxViews = 65_536;
const none = Number.MAX_SAFE_INTEGER;

export class PolicyEvaluator implements PolicyEngine, CandidateSink {
  readonly version: number;
  readonly failMode: EnforcementSettings["failMode"];
  readonly failDecision: Decision;
  readonly #policy: CompiledPolicy;
  readonly #rules: readonly CompiledRule[];
  /** Which selectors match a label set (1/0 per selector), by canonical label key. */
  readonly #viewsByKey = new Map<string, Uint8Array>();
  /** The same, by frozen labels object: PEPs that freeze device records skip the key. */
  readonly #viewsByObject = new WeakMap<Labels, Uint8Array>();
  readonly #target = new Target();

  // The request being decided, read by `visit` (decide is synchronous and not re-entrant).
  #view: Uint8Array = new Uint8Array(0);
  #port = 0;
  #protocol: 1 | 2 = 1;
  #bearer = 0;
  #country: string | undefined = undefined;
  #at = 0;
  #denyOnly = false;
  #deny = none;
  #allow = none;

  constructor(policy: CompiledPolicy) {
    this.#policy = policy;
    this.#rules = policy.rules;
    this.version = policy.version;
    this.failMode = policy.failMode;
    this.failDecision = failDecision(policy.failMode);
  }

  decide(input: DecisionInput): Decision {
    const device = input.device;
    const state = device.state;
    if (state !== "active") {
      if (state === "revoked") return fixedDecisions.revoked;
      if (state === "suspended") return fixedDecisions.suspended;
      if (state === "quarantined") return this.#quarantine(input);
      return fixedDecisions.unknownState;
    }
    const target = this.#target.set(input.destination);
    const protocol = input.protocol === "udp" ? 2 : 1;
    this.#view = this.#viewFor(device.labels);
    this.#port = input.port;
    this.#protocol = protocol;
    this.#bearer = bearerBits.get(input.bearer) ?? 0;
    this.#country = input.country;
    this.#at = input.at;
    const principal = input.principal;
    this.#denyOnly = principal !== undefined;
    this.#deny = none;
    this.#allow = none;
    this.#policy.index.lookup(target, this);

    if (this.#deny !== none) return this.#rules[this.#deny]!.decision;
    if (principal === undefined) return this.#allow !== none ? this.#rules[this.#allow]!.decision : fixedDecisions.noRule;

    const grants = this.#policy.grantsByPrincipal.get(principal);
    if (grants !== undefined) {
      const at = input.at;
      for (const grant of grants) {
        if (at < grant.notBefore || at >= grant.until) continue;
        if (grant.deviceId !== null ? grant.deviceId !== device.id : this.#view[grant.selector] !== 1) continue;
        if (anyMatches(grant.destinations, target, input.port, protocol)) return grant.decision;
      }
    }
    return fixedDecisions.noGrant;
  }

  /** Index callback: entries whose host or network already matches the target. */
  visit(entries: readonly IndexEntry[]): void {
    const rules = this.#rules;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const ref = entry.ref;
      const rule = rules[ref]!;
      if (rule.deny ? ref >= this.#deny : this.#denyOnly || this.#deny !== none || ref >= this.#allow) continue;
      if (this.#view[rule.selector] !== 1) continue;
      const destination = entry.destination;
      if (destination.protocol !== 0 && destination.protocol !== this.#protocol) continue;
      if (!portAllowed(destination.ports, this.#port)) continue;
      if (rule.bearers !== 0 && (rule.bearers & this.#bearer) === 0) continue;
      if (rule.countries !== null && (this.#country === undefined || !rule.countries.has(this.#country))) continue;
      if (rule.schedule !== null && rule.schedule[rule.clock!.minuteOfWeek(this.#at)] !== 1) continue;
      if (rule.deny) this.#deny = ref;
      else this.#allow = ref;
    }
  }

  #quarantine(input: DecisionInput): Decision {
    const target = this.#target.set(input.destination);
    const protocol = input.protocol === "udp" ? 2 : 1;
    return anyMatches(this.#policy.quarantine, target, input.port, protocol)
      ? fixedDecisions.quarantineAllowed
      : fixedDecisions.quarantined;
  }

  #viewFor(labels: Labels): Uint8Array {
    const frozen = Object.isFrozen(labels);
    if (frozen) {
      const view = this.#viewsByObject.get(labels);
      if (view !== undefined) return view;
    }
    const key = labelSetKey(labels);
    let view = this.#viewsByKey.get(key);
    if (view === undefined) {
      const selectors = this.#policy.selectors;
      view = new Uint8Array(selectors.length);
      for (let i = 0; i < selectors.length; i++) view[i] = selectors[i]!(labels) ? 1 : 0;
      if (this.#viewsByKey.size >= maxViews) this.#viewsByKey.clear();
      this.#viewsByKey.set(key, view);
    }
    if (frozen) this.#viewsByObject.set(labels, view);
    return view;
  }
}

function anyMatches(destinations: readonly CompiledDestination[], target: Target, port: number, protocol: 1 | 2): boolean {
  for (let i = 0; i < destinations.length; i++) if (destinationMatches(destinations[i]!, target, port, protocol)) return true;
  return false;
}
