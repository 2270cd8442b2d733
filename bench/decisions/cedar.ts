/**
 * The same policy in Cedar (cedar-wasm, preparsed policy set).
 *
 * Devices are `Device` entities with `state` and a `labels` record, so selectors are
 * plain Cedar: `principal.labels has site && ["lyon"].contains(principal.labels.site)`.
 * Destinations use the ipaddr extension (`ip(..).isInRange(..)`, IPv4 and IPv6) and
 * `like "*.example.com"` for host wildcards; ports, protocol, bearer, country, grant
 * windows and the principal come in the context. forbid-overrides-permit and default deny
 * are Cedar's own semantics.
 *
 * Not expressible: schedules (Cedar's datetime extension has no time zones or weekdays),
 * so schedule rules are left out. `like "*.x"` would also match the empty label `.x`
 * (never a real host). The wasm API takes the entities with every call (only the policy
 * set is preparsed), so each request passes the one device entity, prebuilt per device.
 */
import { preparsePolicySet, statefulIsAuthorized, type EntityJson } from "@cedar-policy/cedar-wasm/nodejs";
import type { DecisionInput, Destination, LabelSelector, PolicySet } from "../../packages/core/src/policy/model.ts";
import type { BenchDevice } from "./tenant.ts";

const str = (value: string) => JSON.stringify(value);
const list = (values: readonly string[]) => `[${values.map(str).join(", ")}]`;

function selectorText(selector: LabelSelector): string {
  const label = (key: string) => `principal.labels[${str(key)}]`;
  const has = (key: string) => `principal.labels has ${str(key)}`;
  const terms = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => `(${has(key)} && ${label(key)} == ${str(value)})`);
  for (const e of selector.matchExpressions ?? []) {
    if (e.operator === "In") terms.push(`(${has(e.key)} && ${list(e.values ?? [])}.contains(${label(e.key)}))`);
    if (e.operator === "NotIn") terms.push(`(!(${has(e.key)}) || !${list(e.values ?? [])}.contains(${label(e.key)}))`);
    if (e.operator === "Exists") terms.push(has(e.key));
    if (e.operator === "DoesNotExist") terms.push(`!(${has(e.key)})`);
  }
  return terms.length ? terms.join(" && ") : "true";
}

function destinationText(d: Destination): string {
  const where = d.cidr
    ? `(context has ip && context.ip.isInRange(ip(${str(d.cidr)})))`
    : d.fqdn!.startsWith("*.")
      ? `(context has host && context.host like ${str(d.fqdn!.toLowerCase())})`
      : `(context has host && context.host == ${str(d.fqdn!.toLowerCase())})`;
  const ports = d.ports
    ? `(${d.ports.map((p) => (typeof p === "number" ? `context.port == ${p}` : `(context.port >= ${p.from} && context.port <= ${p.to})`)).join(" || ")})`
    : "true";
  const protocol = d.protocol === "any" ? "true" : `context.protocol == ${str(d.protocol)}`;
  return `(${where} && ${ports} && ${protocol})`;
}

const anyOf = (destinations: readonly Destination[]) => `(${destinations.map(destinationText).join(" || ")})`;

export function cedarPolicies(set: PolicySet): string {
  const policies: string[] = [];
  for (const rule of set.rules) {
    if (rule.conditions?.schedule) continue;
    const terms = [`principal.state == "active"`, selectorText(rule.selector), anyOf(rule.destinations)];
    if (rule.conditions?.bearers) terms.push(`${list(rule.conditions.bearers)}.contains(context.bearer)`);
    if (rule.conditions?.countries) terms.push(`(context has country && ${list(rule.conditions.countries)}.contains(context.country))`);
    if (rule.effect === "allow") terms.push(`context.principal == ""`);
    policies.push(
      `@id(${str(rule.id)})\n${rule.effect === "deny" ? "forbid" : "permit"}(principal, action, resource) when { ${terms.join(" && ")} };`,
    );
  }
  for (const grant of set.grants) {
    const until = Math.min(Date.parse(grant.notAfter), grant.revokedAt ? Date.parse(grant.revokedAt) : Infinity);
    const target = "deviceId" in grant.target ? `principal == Device::${str(grant.target.deviceId)}` : selectorText(grant.target.selector);
    const terms = [
      `principal.state == "active"`,
      `context.principal == ${str(grant.principal)}`,
      `context.at >= ${Date.parse(grant.notBefore)}`,
      `context.at < ${until}`,
      target,
      anyOf(grant.destinations),
    ];
    policies.push(`@id(${str(grant.id)})\npermit(principal, action, resource) when { ${terms.join(" && ")} };`);
  }
  if (set.settings.quarantineDestinations.length) {
    policies.push(
      `@id("quarantine")\npermit(principal, action, resource) when { principal.state == "quarantined" && ${anyOf(set.settings.quarantineDestinations)} };`,
    );
  }
  return policies.join("\n");
}

export interface CedarBench {
  readonly policies: number;
  decide(input: DecisionInput): boolean;
}

const action = { type: "Action", id: "connect" };
const resource = { type: "Destination", id: "any" };

export function buildCedar(set: PolicySet, devices: readonly BenchDevice[]): CedarBench {
  const text = cedarPolicies(set);
  const parsed = preparsePolicySet("tenant", { staticPolicies: text });
  if (parsed.type !== "success") throw new Error(`cedar: ${parsed.errors.map((e) => e.message).join("; ")}`);
  const entities = new Map<string, EntityJson[]>(
    devices.map((device) => [
      device.id,
      [{ uid: { type: "Device", id: device.id }, attrs: { state: device.state, labels: { ...device.labels } }, parents: [] }],
    ]),
  );
  return {
    policies: text.split("\n@id").length,
    decide(input) {
      const context: Record<string, unknown> = {
        port: input.port,
        protocol: input.protocol,
        bearer: input.bearer,
        at: input.at,
        principal: input.principal ?? "",
      };
      if (input.destination.ip !== undefined) context.ip = { __extn: { fn: "ip", arg: input.destination.ip } };
      if (input.destination.fqdn !== undefined) context.host = input.destination.fqdn.toLowerCase();
      if (input.country !== undefined) context.country = input.country;
      const answer = statefulIsAuthorized({
        principal: { type: "Device", id: input.device.id },
        action,
        resource,
        context: context as never,
        preparsedPolicySetId: "tenant",
        entities: entities.get(input.device.id) ?? [],
      });
      if (answer.type !== "success") throw new Error(`cedar: ${answer.errors.map((e) => e.message).join("; ")}`);
      return answer.response.decision === "allow";
    },
  };
}
