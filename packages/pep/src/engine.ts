/**
 * The PEP's decisions: the core engine compiled from the replicated view, with what only an
 * enforcement point knows around it. The policy set is recompiled only when rules, grants or
 * settings changed (a device or binding change costs nothing here). Order:
 *   1. the view is not fresh (no accepted head, or its head expired: the control plane is
 *      unreachable, or a freeze attack withholds changes) -> fail closed, whatever the tenant
 *      fail mode: deny.feed-expired, except the locally configured break-glass destinations
 *      (allow.break-glass; never for a device the PEP knows is revoked: revocation is terminal)
 *   2. no device for the request (unknown address or id)  -> deny.unknown-device
 *   3. the policy set does not compile, or evaluation throws -> the tenant fail mode
 *      (deny.fail-closed, or allow.fail-open when the tenant chose open)
 *   4. otherwise the core engine's decision.
 * Before all of these, an address a snapshot under way says a revoked device released (its revocations page, enforced
 * before its other pages) is denied, fresh feed or not: deny.revoked as that device when the view does not bind the
 * address to another device, else deny.revoked-address-pending, attributed to no device (see `#pendingRevoked`).
 */
import { compilePolicy, type PolicyEngine } from "@simroot/core/policy/compile";
import { compileDestination, destinationMatches, Target, type CompiledDestination } from "@simroot/core/policy/destination";
import { decideOrFail, failDecision, stateDecision } from "@simroot/core/policy/evaluate";
import {
  destinationSchema,
  type Decision,
  type DecisionReason,
  type Destination,
  type EnforcementSettings,
  type PolicySet,
} from "@simroot/core/policy/model";
import type { Bearer } from "@simroot/core/catalogue/catalogue";
import { maxClockSkewSeconds } from "@simroot/core/feed/wire";
import { isIP } from "node:net";
import type { DeviceView, PepState } from "./state.ts";

export type PepReason =
  | DecisionReason
  | "deny.unknown-device"
  | "deny.feed-expired"
  | "allow.break-glass"
  /** The address is one a device revoked in the snapshot under way released, and the view binds it to another device. */
  | "deny.revoked-address-pending";

export interface PepDecision {
  readonly allow: boolean;
  readonly reason: PepReason;
  readonly explanation: string;
  readonly ruleId?: string;
  readonly grantId?: string;
  readonly sessionRecording?: boolean;
  /** The device the request was attributed to, when known. */
  readonly deviceId?: string;
  /**
   * deny.revoked-address-pending: the revoked device that released the request's address, by the snapshot under way.
   * Not the requester: the view binds the address to another device, and which of the two holds it is known once the
   * snapshot completes.
   */
  readonly revokedDeviceId?: string;
}

/** One connection to decide: the device by its address inside the APN (the usual case) or by id. */
export interface DecideRequest {
  readonly sourceIp?: string;
  readonly deviceId?: string;
  readonly destination: { readonly ip?: string; readonly fqdn?: string };
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  /** Defaults to the bearer of the device's binding. */
  readonly bearer?: Bearer;
  /** Defaults to the country of the device's binding, as the control plane knows it (unknown: no country condition holds). */
  readonly country?: string;
  readonly principal?: string;
  /** The instant the policy is evaluated for (epoch ms); defaults to now. Freshness is always judged at now. */
  readonly at?: number;
}

/**
 * A break-glass destination from the PEP's configuration: a CIDR, a bare address, an exact
 * host or `*.suffix`, any port and protocol. Throws on anything else.
 */
export function parseBreakGlass(entry: string): Destination {
  const text = entry.trim();
  const candidate = text.includes("/")
    ? { cidr: text }
    : isIP(text) === 4
      ? { cidr: `${text}/32` }
      : isIP(text) === 6
        ? { cidr: `${text}/128` }
        : { fqdn: text };
  const parsed = destinationSchema.safeParse({ ...candidate, protocol: "any" });
  if (!parsed.success) throw new Error(`break-glass destination ${JSON.stringify(entry)}: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

const frozen = (decision: PepDecision): PepDecision => Object.freeze(decision);
const unknownDevice = frozen({
  allow: false,
  reason: "deny.unknown-device",
  explanation: "no device is known for this request (unknown address or id)",
});
const breakGlass = frozen({
  allow: true,
  reason: "allow.break-glass",
  explanation: "the feed is not fresh, and this is a locally configured break-glass destination",
});

export interface EngineOptions {
  /** Break-glass destinations (CIDRs, addresses, hosts) reachable when the feed is not fresh. */
  readonly breakGlass?: readonly string[];
  readonly now?: () => number;
  /** The clock-skew tolerance, seconds (the same as the sync's: a head verified fresh is enforced as fresh). */
  readonly clockSkewSeconds?: number;
  /** A monotonic clock, ms (the sync's: `performance.now` unless both are given another). */
  readonly monotonic?: () => number;
}

export interface EngineStatus {
  readonly fresh: boolean;
  readonly version: number;
  readonly policyVersion: number | undefined;
  readonly headExpiresAt: string | undefined;
  readonly compileError: string | undefined;
  readonly compilations: number;
}

const revokedDecision = (deviceId: string | undefined): PepDecision => ({
  allow: false,
  reason: "deny.revoked",
  explanation: "the device is revoked: every connection is denied",
  ...(deviceId ? { deviceId } : {}),
});

export class PepEngine {
  readonly #state: PepState;
  readonly #now: () => number;
  readonly #skewMs: number;
  readonly #monotonic: () => number;
  readonly #breakGlass: readonly CompiledDestination[];
  readonly #target = new Target();
  #compiledRevision = -1;
  #engine: PolicyEngine | undefined;
  #compileError: string | undefined;
  #failMode: EnforcementSettings["failMode"] = "closed";
  /** How many times the policy set was compiled (tests and /healthz). */
  compilations = 0;

  constructor(state: PepState, options: EngineOptions = {}) {
    this.#state = state;
    this.#now = options.now ?? Date.now;
    this.#skewMs = Math.min(Math.max(options.clockSkewSeconds ?? 1, 0), maxClockSkewSeconds) * 1000;
    this.#monotonic = options.monotonic ?? (() => performance.now());
    this.#breakGlass = (options.breakGlass ?? []).map((entry) => compileDestination(parseBreakGlass(entry)));
  }

  /**
   * Fresh while the last accepted head has not expired (within the bounded clock-skew tolerance), by the wall clock and,
   * for a head the sync accepted in this process, by the monotonic clock since: what was left of its lifetime then. A
   * wall clock set back (NTP stepping it, or whoever can set it) made an expired head fresh again (review 85). Never
   * before it was issued (within the tolerance).
   */
  fresh(now = this.#now()): boolean {
    const until = this.#state.freshUntil;
    if (!(until > 0 && now < until + this.#skewMs)) return false;
    // Issued ahead of this clock beyond the tolerance, as the sync refuses a head: a clock set back a day before a
    // restart kept the state file's head fresh all day, every newer one refused as not yet valid (review 85).
    if (Date.parse(this.#state.head!.head.issuedAt) - this.#skewMs > now) return false;
    const accepted = this.#state.headAccepted;
    return accepted === undefined || this.#monotonic() - accepted.monotonic < until + this.#skewMs - accepted.wall;
  }

  decide(request: DecideRequest): PepDecision {
    const now = this.#now();
    // An address a snapshot under way says a revoked device released: denied, whoever the older view binds it to.
    const pending = request.sourceIp === undefined ? undefined : this.#state.pendingRevokedHolder(request.sourceIp);
    if (pending !== undefined) return this.#pendingRevoked(request, request.sourceIp!, pending);
    const device = this.#device(request);
    if (!this.fresh(now)) return this.#stale(request, device.view);
    if (device.view === undefined) return unknownDevice;
    const engine = this.#compiled();
    const view = device.view;
    const decision: Decision =
      engine === undefined
        ? (stateDecision(view.state) ?? failDecision(this.#failMode))
        : decideOrFail(engine, {
            device: { id: view.id, state: view.state, labels: view.labels as Record<string, string> },
            destination: request.destination,
            port: request.port,
            protocol: request.protocol,
            // An unknown bearer satisfies no bearer condition (as an unknown country satisfies no country condition).
            bearer: request.bearer ?? device.bearer ?? ("unknown" as Bearer),
            // The country the control plane knows the binding's session in, unless the caller says (review 117).
            ...((request.country ?? device.country) === undefined ? {} : { country: request.country ?? device.country }),
            ...(request.principal === undefined ? {} : { principal: request.principal }),
            at: request.at ?? now,
          });
    return { ...decision, deviceId: view.id };
  }

  status(): EngineStatus {
    this.#compiled();
    const head = this.#state.head?.head;
    return {
      fresh: this.fresh(),
      version: this.#state.version,
      policyVersion: this.#engine?.version,
      headExpiresAt: head?.expiresAt,
      compileError: this.#compileError,
      compilations: this.compilations,
    };
  }

  /**
   * A request from an address that `revoked` released, by a snapshot under way: denied until the snapshot completes.
   * As that device's (deny.revoked) when the view binds the address to it or to nobody (as a revoked device's last
   * address is its own until another device holds it), or the request names it. Not when the view binds the address
   * to another device (or the request names another): the page that named the address is listed from a lagging index (the address can be that
   * device's since: review 65), or the view is the older one (the revoked device's since: review 63). Which it is, the
   * snapshot's later pages say; until then the decision names no device (a flow is reported by its source address),
   * only the revoked one that released the address (`revokedDeviceId`), and says why.
   */
  #pendingRevoked(request: DecideRequest, sourceIp: string, revoked: string): PepDecision {
    const named = request.deviceId ?? this.#state.binding(sourceIp)?.deviceId;
    if (named === undefined || named === revoked) return revokedDecision(revoked);
    return {
      allow: false,
      reason: "deny.revoked-address-pending",
      explanation:
        "a device revoked in the snapshot this PEP is taking released this address: it is denied, whichever device holds it, until the snapshot completes",
      revokedDeviceId: revoked,
    };
  }

  #stale(request: DecideRequest, found: DeviceView | undefined): PepDecision {
    // An address whose device was revoked (the revocation released it) is still that device's until another holds it.
    const revokedHolder = found === undefined && request.sourceIp !== undefined ? this.#state.revokedHolder(request.sourceIp) : undefined;
    const device = found ?? (revokedHolder === undefined ? undefined : this.#state.devices.get(revokedHolder));
    const deviceId = device?.id;
    if (device?.state === "revoked") return revokedDecision(deviceId);
    // Break-glass is for the devices that may reach something: one the view knows suspended or quarantined reaches no
    // more while the feed is stale than while it is fresh (review 135: a quarantined device reached the break-glass
    // network once the feed was withheld, which a fresh feed denied it). Its state's denial, as a fresh feed's.
    const held = device === undefined || device.state === "active" ? undefined : stateDecision(device.state);
    if (held !== undefined) return { ...held, deviceId: deviceId! };
    const target = this.#target.set(request.destination);
    const protocol = request.protocol === "udp" ? 2 : 1;
    if (this.#breakGlass.some((destination) => destinationMatches(destination, target, request.port, protocol))) {
      return deviceId ? { ...breakGlass, deviceId } : breakGlass;
    }
    const head = this.#state.head?.head;
    return {
      allow: false,
      reason: "deny.feed-expired",
      explanation: head
        ? `the policy feed expired at ${head.expiresAt} and this PEP fails closed until it syncs again`
        : "this PEP has no verified policy feed yet and fails closed",
      ...(deviceId ? { deviceId } : {}),
    };
  }

  /** The device a request is about, and the bearer and country of its binding (the one holding the source address). */
  #device(request: DecideRequest): { view: DeviceView | undefined; bearer: Bearer | undefined; country?: string | undefined } {
    const state = this.#state;
    if (request.sourceIp !== undefined) {
      const binding = state.binding(request.sourceIp);
      if (binding === undefined || (request.deviceId !== undefined && request.deviceId !== binding.deviceId))
        return { view: undefined, bearer: undefined };
      return { view: state.devices.get(binding.deviceId), bearer: binding.bearer, country: binding.country };
    }
    if (request.deviceId === undefined) return { view: undefined, bearer: undefined };
    const binding = state.bindingOf(request.deviceId);
    return { view: state.devices.get(request.deviceId), bearer: binding?.bearer, country: binding?.country };
  }

  /** The engine for the current rules, grants and settings, compiled when they changed since the last call. */
  #compiled(): PolicyEngine | undefined {
    const state = this.#state;
    if (state.policyRevision === this.#compiledRevision) return this.#engine;
    this.#compiledRevision = state.policyRevision;
    const set = policySetOf(state);
    this.#failMode = set.settings.failMode;
    this.compilations++;
    try {
      this.#engine = compilePolicy(set, this.#now());
      this.#compileError = undefined;
    } catch (error) {
      this.#engine = undefined;
      this.#compileError = error instanceof Error ? error.message : String(error);
    }
    return this.#engine;
  }
}

/**
 * The policy set the view holds. The fail mode is the enforcement settings' alone (the
 * control plane keeps it in one place and sends every change of it as a delta); closed
 * until the PEP has them.
 */
export function policySetOf(state: PepState): PolicySet {
  const enforcement = state.settings.get("enforcement") as Partial<EnforcementSettings> | undefined;
  const failMode = enforcement?.failMode;
  return {
    version: state.version,
    rules: [...state.policies.values()],
    grants: [...state.grants.values()],
    settings: {
      quarantineDestinations: enforcement?.quarantineDestinations ?? [],
      failMode: failMode === "open" ? "open" : "closed",
    },
  };
}
