/**
 * The compiled engine against a deliberately naive reference evaluator: the reference reads
 * the policy set as written (string ops, BigInt addresses, Intl for every schedule check, a
 * straight loop over rules and grants) and follows the order documented in evaluate.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compiledPolicyWithRequests, policyWithRequests } from "./arbitraries.test-support.ts";
import { compilePolicy } from "./compile.ts";
import type { Conditions, DecisionInput, Destination, LabelSelector, PolicyRule, PolicySet } from "./model.ts";

// ---------- the reference ----------

const has = (labels: Record<string, string>, key: string) => Object.hasOwn(labels, key);

function refSelector(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (!has(labels, key) || labels[key] !== value) return false;
  for (const e of selector.matchExpressions ?? []) {
    const present = has(labels, e.key);
    if (e.operator === "In" && !(present && e.values!.includes(labels[e.key]!))) return false;
    if (e.operator === "NotIn" && present && e.values!.includes(labels[e.key]!)) return false;
    if (e.operator === "Exists" && !present) return false;
    if (e.operator === "DoesNotExist" && present) return false;
  }
  return true;
}

/** [bits, value] or null. IPv4-mapped IPv6 becomes IPv4. */
function refIp(text: string): [32 | 128, bigint] | null {
  const v4 = (s: string) => {
    const parts = s.split(".");
    if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255)) return null;
    return parts.reduce((acc, p) => acc * 256n + BigInt(p), 0n);
  };
  if (!text.includes(":")) {
    const v = v4(text);
    return v === null ? null : [32, v];
  }
  let head = text;
  let tail: bigint[] = [];
  if (text.includes(".")) {
    const at = text.lastIndexOf(":");
    const v = v4(text.slice(at + 1));
    if (v === null) return null;
    tail = [v >> 16n, v & 0xffffn];
    head = `${text.slice(0, at + 1)}0`; // placeholder group, dropped below
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  let left = groups(halves[0]!);
  let right = halves.length === 2 ? groups(halves[1]!) : [];
  if (tail.length) {
    if (right.length) right = right.slice(0, -1);
    else left = left.slice(0, -1);
  }
  const all = [...left, ...right];
  if (all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  const missing = 8 - all.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const words = [
    ...left.map((g) => BigInt(`0x${g}`)),
    ...Array(halves.length === 2 ? missing : 0).fill(0n),
    ...right.map((g) => BigInt(`0x${g}`)),
    ...tail,
  ];
  const value = words.reduce((acc, w) => (acc << 16n) | w, 0n);
  if (value >> 32n === 0xffffn) return [32, value & 0xffffffffn];
  return [128, value];
}

function refCidr(cidr: string, ip: [number, bigint]): boolean {
  const [address, prefixText] = cidr.split("/");
  const network = refIp(address!)!;
  const prefix = BigInt(prefixText!);
  if (network[0] !== ip[0]) return false;
  const shift = BigInt(network[0]) - prefix;
  return ip[1] >> shift === network[1] >> shift;
}

const refHost = (h: string) => (h.endsWith(".") ? h.slice(0, -1) : h).toLowerCase();

function refDestination(d: Destination, input: DecisionInput): boolean {
  if (d.protocol !== "any" && d.protocol !== input.protocol) return false;
  if (d.ports && !d.ports.some((p) => (typeof p === "number" ? p === input.port : p.from <= input.port && input.port <= p.to)))
    return false;
  if (d.fqdn !== undefined) {
    if (input.destination.fqdn === undefined) return false;
    const host = refHost(input.destination.fqdn);
    const pattern = refHost(d.fqdn);
    return pattern.startsWith("*.") ? host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1 : host === pattern;
  }
  if (input.destination.ip === undefined) return false;
  const ip = refIp(input.destination.ip);
  return ip !== null && refCidr(d.cidr!, ip);
}

const dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

function refSchedule(schedule: NonNullable<Conditions["schedule"]>, at: number): boolean {
  const parts = new Intl.DateTimeFormat("en-GB", {
    timeZone: schedule.timezone,
    weekday: "short",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)!.value;
  const day = dayNames.indexOf(get("weekday").toLowerCase().slice(0, 3));
  const minute = (Number(get("hour")) % 24) * 60 + Number(get("minute"));
  const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3));
  return schedule.windows.some((w) =>
    w.days.some((name) => {
      const d = dayNames.indexOf(name);
      const start = minutes(w.start);
      const end = minutes(w.end);
      if (end > start) return day === d && minute >= start && minute < end;
      return (day === d && minute >= start) || (day === (d + 1) % 7 && minute < end);
    }),
  );
}

function refConditions(c: Conditions | undefined, input: DecisionInput): boolean {
  if (!c) return true;
  if (c.bearers && !c.bearers.includes(input.bearer)) return false;
  if (c.countries && (input.country === undefined || !c.countries.includes(input.country))) return false;
  if (c.schedule && !refSchedule(c.schedule, input.at)) return false;
  return true;
}

/** `compiledAt`: the deciding clock's instant at compilation, where a revoked grant ends at the latest. */
function reference(set: PolicySet, input: DecisionInput, compiledAt = Number.POSITIVE_INFINITY) {
  const { device } = input;
  if (device.state === "revoked") return { allow: false, reason: "deny.revoked" };
  if (device.state === "suspended") return { allow: false, reason: "deny.suspended" };
  if (device.state === "quarantined") {
    return set.settings.quarantineDestinations.some((d) => refDestination(d, input))
      ? { allow: true, reason: "allow.quarantine" }
      : { allow: false, reason: "deny.quarantined" };
  }
  const matching = (rule: PolicyRule) =>
    refSelector(rule.selector, device.labels) &&
    rule.destinations.some((d) => refDestination(d, input)) &&
    refConditions(rule.conditions, input);
  const deny = set.rules.find((rule) => rule.effect === "deny" && matching(rule));
  if (deny) return { allow: false, reason: "deny.rule", ruleId: deny.id };
  if (input.principal === undefined) {
    const allow = set.rules.find((rule) => rule.effect === "allow" && matching(rule));
    return allow ? { allow: true, reason: "allow.rule", ruleId: allow.id } : { allow: false, reason: "deny.default" };
  }
  const grant = set.grants.find(
    (g) =>
      g.principal === input.principal &&
      Date.parse(g.notBefore) <= input.at &&
      input.at < Date.parse(g.notAfter) &&
      (g.revokedAt === undefined || (input.at < Date.parse(g.revokedAt) && input.at < compiledAt)) &&
      ("deviceId" in g.target ? g.target.deviceId === device.id : refSelector(g.target.selector, device.labels)) &&
      g.destinations.some((d) => refDestination(d, input)),
  );
  return grant
    ? { allow: true, reason: "allow.grant", grantId: grant.id, sessionRecording: grant.sessionRecording }
    : { allow: false, reason: "deny.default" };
}

describe("compiled engine vs reference", () => {
  it("decides every request as the naive reference does", () => {
    fc.assert(
      fc.property(compiledPolicyWithRequests, ([set, compiledAt, requests]) => {
        const engine = compilePolicy(set, compiledAt);
        for (const input of requests) {
          const { allow, reason, ruleId, grantId, sessionRecording } = engine.decide(input);
          expect({ allow, reason, ruleId, grantId, sessionRecording }).toEqual({
            ruleId: undefined,
            grantId: undefined,
            sessionRecording: undefined,
            ...reference(set, input, compiledAt),
          });
        }
      }),
      { numRuns: 1500 },
    );
  });

  it("reference sanity: the generators produce allows, denies and every reason", () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(policyWithRequests, ([set, requests]) => {
        for (const input of requests) seen.add(reference(set, input).reason);
      }),
      { numRuns: 200, seed: 42 },
    );
    expect([...seen].sort()).toEqual([
      "allow.grant",
      "allow.quarantine",
      "allow.rule",
      "deny.default",
      "deny.quarantined",
      "deny.revoked",
      "deny.rule",
      "deny.suspended",
    ]);
  });
});
