/**
 * The same policy in node-casbin, as closely as casbin allows.
 *
 * Model: RBAC for "who" plus an ABAC-style matcher for "what". Casbin has no label
 * selectors, so they are resolved outside it into role links (device -> segment ->
 * selector group; `g(r.dev, p.sub)`); a device-targeted grant uses the device id as its
 * subject (casbin's g(x, x) is true). Each (rule, destination, port range) becomes one
 * policy line. Destinations use casbin's built-in ipMatch (IPv4 and IPv6) and one small
 * custom function for host names (exact or `*.suffix`), because keyMatch/globMatch treat
 * `*` differently from DNS wildcards; bearer and country lists use a custom membership
 * function. Deny-overrides and default deny are casbin's
 * `some(where (p.eft == allow)) && !some(where (p.eft == deny))`.
 *
 * Not expressible: schedules (no time zones or weekdays in casbin's matcher language; a
 * custom function would just be our engine), so schedule rules are left out; which rule or
 * grant decided (casbin returns a boolean here); casbin scans every policy line per request,
 * so there is no index to speak of.
 */
import { newEnforcer, newModelFromString, type Enforcer } from "casbin";
import type { DecisionInput, PolicySet } from "../../packages/core/src/policy/model.ts";
import { compileSelector, labelSetKey, selectorKey } from "../../packages/core/src/policy/selector.ts";
import type { BenchDevice } from "./tenant.ts";

const model = `
[request_definition]
r = dev, state, host, ip, port, proto, bearer, country, at, principal

[policy_definition]
p = sub, kind, principal, dkind, dst, plo, phi, proto, bearers, countries, nb, na, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = ((p.kind == "quarantine" && r.state == "quarantined") || (r.state == "active" && g(r.dev, p.sub) && (p.kind == "deny" || (p.kind == "allow" && r.principal == "") || (p.kind == "grant" && r.principal == p.principal && r.at >= p.nb && r.at < p.na)))) && r.port >= p.plo && r.port <= p.phi && (p.proto == "any" || p.proto == r.proto) && (p.bearers == "*" || oneOf(r.bearer, p.bearers)) && (p.countries == "*" || oneOf(r.country, p.countries)) && ((p.dkind == "cidr" && r.ip != "" && ipMatch(r.ip, p.dst)) || (p.dkind == "fqdn" && r.host != "" && hostMatch(r.host, p.dst)))
`;

const lists = new Map<string, Set<string>>();
function oneOf(value: string, list: string): boolean {
  let set = lists.get(list);
  if (!set) lists.set(list, (set = new Set(list.split("|"))));
  return set.has(value);
}

function hostMatch(host: string, pattern: string): boolean {
  return pattern.startsWith("*.") ? host.length > pattern.length - 1 && host.endsWith(pattern.slice(1)) : host === pattern;
}

export interface CasbinBench {
  readonly enforcer: Enforcer;
  readonly lines: number;
  decide(input: DecisionInput): boolean;
}

export async function buildCasbin(set: PolicySet, devices: readonly BenchDevice[]): Promise<CasbinBench> {
  const enforcer = await newEnforcer(newModelFromString(model));
  await enforcer.addFunction("oneOf", oneOf);
  await enforcer.addFunction("hostMatch", hostMatch);

  // Selector groups, and which segments (distinct label sets) belong to them.
  const selectors = new Map<string, { id: string; matches: (labels: Record<string, string>) => boolean }>();
  const groupOf = (selector: Parameters<typeof selectorKey>[0]) => {
    const key = selectorKey(selector);
    let group = selectors.get(key);
    if (!group) selectors.set(key, (group = { id: `sel:${selectors.size}`, matches: compileSelector(selector) }));
    return group.id;
  };

  const lines: string[][] = [];
  const destinationLines = (
    sub: string,
    kind: string,
    principal: string,
    destinations: PolicySet["rules"][number]["destinations"],
    conditions: { bearers?: string[]; countries?: string[] },
    window: [string, string],
    eft: string,
  ) => {
    for (const d of destinations) {
      const ranges = (d.ports ?? [{ from: 0, to: 65535 }]).map((p) => (typeof p === "number" ? [p, p] : [p.from, p.to]));
      for (const [from, to] of ranges) {
        lines.push([
          sub,
          kind,
          principal,
          d.cidr ? "cidr" : "fqdn",
          d.cidr ?? d.fqdn!.toLowerCase(),
          String(from),
          String(to),
          d.protocol,
          conditions.bearers?.join("|") ?? "*",
          conditions.countries?.join("|") ?? "*",
          ...window,
          eft,
        ]);
      }
    }
  };
  for (const rule of set.rules) {
    if (rule.conditions?.schedule) continue;
    destinationLines(groupOf(rule.selector), rule.effect, "-", rule.destinations, rule.conditions ?? {}, ["0", "0"], rule.effect);
  }
  for (const grant of set.grants) {
    const sub = "deviceId" in grant.target ? grant.target.deviceId : groupOf(grant.target.selector);
    const until = Math.min(Date.parse(grant.notAfter), grant.revokedAt ? Date.parse(grant.revokedAt) : Infinity);
    destinationLines(sub, "grant", grant.principal, grant.destinations, {}, [String(Date.parse(grant.notBefore)), String(until)], "allow");
  }
  destinationLines("*", "quarantine", "-", set.settings.quarantineDestinations, {}, ["0", "0"], "allow");
  // Identical lines (two rules saying the same thing) would make addPolicies refuse the batch.
  const unique = [...new Map(lines.map((line) => [JSON.stringify(line), line])).values()];
  await enforcer.addPolicies(unique);

  const links: string[][] = [];
  const segments = new Map<string, { key: string; labels: Record<string, string> }>();
  for (const device of devices) {
    const key = labelSetKey(device.labels);
    segments.set(key, { key: `seg:${key}`, labels: device.labels });
    links.push([device.id, `seg:${key}`]);
  }
  for (const { key, labels } of segments.values()) {
    for (const group of selectors.values()) if (group.matches(labels)) links.push([key, group.id]);
  }
  await enforcer.addGroupingPolicies(links);

  return {
    enforcer,
    lines: unique.length,
    decide: (input) =>
      enforcer.enforceSync(
        input.device.id,
        input.device.state,
        input.destination.fqdn?.toLowerCase() ?? "",
        input.destination.ip ?? "",
        input.port,
        input.protocol,
        input.bearer,
        input.country ?? "",
        input.at,
        input.principal ?? "",
      ),
  };
}
