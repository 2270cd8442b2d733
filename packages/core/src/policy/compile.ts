/**
 * Compiles a policy set once into what every decision needs: deduplicated selector
 * predicates, one destination index over all rules, condition bitmasks and sets, schedule
 * bitmaps, grants by principal, and the frozen `Decision` each rule and grant returns.
 * `evaluate.ts` then answers requests with hash probes and short scans.
 */
import { SimrootError } from "../error.ts";
import { compileDestination, type CompiledDestination } from "./destination.ts";
import { DestinationIndex } from "./destination-index.ts";
import { bearerBits, PolicyEvaluator } from "./evaluate.ts";
import {
  policySetSchema,
  type Decision,
  type DecisionInput,
  type EnforcementSettings,
  type Grant,
  type PolicyRule,
  type PolicySetInput,
} from "./model.ts";
import { compileSchedule, zoneClock, type ZoneClock } from "./schedule.ts";
import { compileSelector, selectorKey, type LabelPredicate } from "./selector.ts";

/** A compiled policy set: pure, synchronous, safe to share. */
export interface PolicyEngine {
  readonly version: number;
  readonly failMode: EnforcementSettings["failMode"];
  /** What a PEP applies when it cannot decide (no policy yet, `decide` threw): deny.fail-closed or allow.fail-open. */
  readonly failDecision: Decision;
  /** Decides one connection. Returns shared frozen decisions: do not mutate them. */
  decide(input: DecisionInput): Decision;
}

export interface CompiledRule {
  readonly id: string;
  readonly deny: boolean;
  /** Position of the rule's selector in `CompiledPolicy.selectors`. */
  readonly selector: number;
  /** 0 when any bearer will do. */
  readonly bearers: number;
  readonly countries: ReadonlySet<string> | null;
  readonly schedule: Uint8Array | null;
  readonly clock: ZoneClock | null;
  readonly decision: Decision;
}

export interface CompiledGrant {
  readonly id: string;
  /** The device the grant names, or null when it targets a selector. */
  readonly deviceId: string | null;
  /** Position in `CompiledPolicy.selectors`, -1 for a device grant. */
  readonly selector: number;
  readonly notBefore: number;
  /** The earlier of notAfter and revokedAt (epoch ms, exclusive). */
  readonly until: number;
  readonly destinations: readonly CompiledDestination[];
  readonly decision: Decision;
}

export interface CompiledPolicy {
  readonly version: number;
  readonly failMode: EnforcementSettings["failMode"];
  readonly rules: readonly CompiledRule[];
  readonly index: DestinationIndex;
  readonly selectors: readonly LabelPredicate[];
  readonly grantsByPrincipal: ReadonlyMap<string, readonly CompiledGrant[]>;
  readonly quarantine: readonly CompiledDestination[];
}

const decision = (value: Decision): Decision => Object.freeze(value);

function ruleDecision(rule: PolicyRule): Decision {
  return rule.effect === "deny"
    ? decision({
        allow: false,
        reason: "deny.rule",
        ruleId: rule.id,
        explanation: `deny rule "${rule.name}" (${rule.id}) matches this connection; deny rules override every allow`,
      })
    : decision({
        allow: true,
        reason: "allow.rule",
        ruleId: rule.id,
        explanation: `allow rule "${rule.name}" (${rule.id}) matches this connection and no deny rule does`,
      });
}

/** The explanation names `revokedAt` as the grant's end; a revoked grant also ends when compiled (below), at the latest. */
function grantDecision(grant: Grant): Decision {
  const recording = grant.sessionRecording ? "; the session must be recorded" : "";
  const until =
    grant.revokedAt !== undefined && Date.parse(grant.revokedAt) < Date.parse(grant.notAfter) ? grant.revokedAt : grant.notAfter;
  return decision({
    allow: true,
    reason: "allow.grant",
    grantId: grant.id,
    sessionRecording: grant.sessionRecording,
    explanation: `grant ${grant.id} lets ${grant.principal} reach this destination until ${until}${recording}`,
  });
}

/**
 * Validates `set` (throwing `policy.invalid` with every issue) and compiles it. Rule order
 * only decides which rule id a decision names when several match.
 */
/**
 * `compiledAt` (epoch ms, by the clock decisions are then made by): a revoked grant ends there at the latest, whatever
 * its `revokedAt` says (below).
 */
export function compilePolicy(set: PolicySetInput, compiledAt: number = Date.now()): PolicyEngine {
  const parsed = policySetSchema.safeParse(set);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message }));
    throw new SimrootError("policy.invalid", "input", `Invalid policy set: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, {
      issues,
    });
  }
  const policy = parsed.data;

  const selectors: LabelPredicate[] = [];
  const selectorIds = new Map<string, number>();
  const selectorIndex = (selector: PolicyRule["selector"]) => {
    const key = selectorKey(selector);
    let id = selectorIds.get(key);
    if (id === undefined) {
      id = selectors.push(compileSelector(selector)) - 1;
      selectorIds.set(key, id);
    }
    return id;
  };

  const schedules = new Map<string, Uint8Array>();
  const index = new DestinationIndex();
  const rules = policy.rules.map((rule, position): CompiledRule => {
    for (const destination of rule.destinations) index.add(position, compileDestination(destination));
    const { bearers: ruleBearers, countries, schedule } = rule.conditions ?? {};
    let bitmap: Uint8Array | null = null;
    if (schedule) {
      const key = JSON.stringify(schedule);
      bitmap = schedules.get(key) ?? compileSchedule(schedule);
      schedules.set(key, bitmap);
    }
    return {
      id: rule.id,
      deny: rule.effect === "deny",
      selector: selectorIndex(rule.selector),
      bearers: (ruleBearers ?? []).reduce((mask, bearer) => mask | (bearerBits.get(bearer) ?? 0), 0),
      countries: countries ? new Set(countries) : null,
      schedule: bitmap,
      clock: schedule ? zoneClock(schedule.timezone) : null,
      decision: ruleDecision(rule),
    };
  });

  const grantsByPrincipal = new Map<string, CompiledGrant[]>();
  // A revoked grant ends when it is revoked, and at the latest when its revocation is first compiled here: its
  // `revokedAt` is the clock of the instance that revoked it, which a fast clock puts in the future (review 105: the
  // grant kept allowing for that instance's skew, everywhere, while every answer said it was revoked).
  for (const grant of policy.grants) {
    const notAfter = Date.parse(grant.notAfter);
    const compiled: CompiledGrant = {
      id: grant.id,
      deviceId: "deviceId" in grant.target ? grant.target.deviceId : null,
      selector: "selector" in grant.target ? selectorIndex(grant.target.selector) : -1,
      notBefore: Date.parse(grant.notBefore),
      until: grant.revokedAt === undefined ? notAfter : Math.min(notAfter, Date.parse(grant.revokedAt), compiledAt),
      destinations: grant.destinations.map(compileDestination),
      decision: grantDecision(grant),
    };
    const list = grantsByPrincipal.get(grant.principal);
    if (list) list.push(compiled);
    else grantsByPrincipal.set(grant.principal, [compiled]);
  }

  return new PolicyEvaluator({
    version: policy.version,
    failMode: policy.settings.failMode,
    rules,
    index,
    selectors,
    grantsByPrincipal,
    quarantine: policy.settings.quarantineDestinations.map(compileDestination),
  });
}
