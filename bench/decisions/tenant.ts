/**
 * A synthetic tenant for the decision benchmark: 10,000 devices in 50 label segments
 * (10 fleets x 5 sites), 200 rules (CIDR and FQDN destinations, port lists and ranges,
 * bearer, country and schedule conditions, about 15% deny), 30 grants, and a pool of
 * requests of which most aim at something the policy names. Deterministic (seeded).
 */
import type { DecisionInput, Destination, Grant, LabelSelector, PolicyRule, PolicySet } from "../../packages/core/src/policy/model.ts";
import { compileSelector } from "../../packages/core/src/policy/selector.ts";

export interface BenchDevice {
  readonly id: string;
  readonly state: DecisionInput["device"]["state"];
  readonly labels: Readonly<Record<string, string>>;
  readonly segment: number;
}

export interface Tenant {
  readonly set: PolicySet;
  readonly devices: readonly BenchDevice[];
  readonly requests: readonly DecisionInput[];
}

/** mulberry32: small, fast, good enough for workloads. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => next() < p;
  return { next, int, pick, chance };
}

const fleets = ["meters", "cameras", "trackers", "pumps", "kiosks", "lockers", "chargers", "sensors", "gateways", "scanners"];
const sites = ["lyon", "porto", "oslo", "turin", "gdansk"];
const zones: Record<string, string> = {
  lyon: "Europe/Paris",
  porto: "Europe/Lisbon",
  oslo: "Europe/Oslo",
  turin: "Europe/Rome",
  gdansk: "Europe/Warsaw",
};
const countries = ["FR", "PT", "NO", "IT", "PL", "DE", "ES", "US"];
const bearers = ["cellular", "private-5g", "wifi", "satellite"] as const;
const commonPorts = [22, 53, 80, 123, 443, 1883, 8000, 8050, 8099, 8100, 8443, 8883];
/** A week spanning the EU end of DST (2025-10-26). */
export const weekStart = Date.parse("2025-10-22T00:00:00Z");
const week = 7 * 24 * 3_600_000;

function segmentLabels(segment: number): Record<string, string> {
  const fleet = fleets[Math.floor(segment / sites.length)]!;
  const site = sites[segment % sites.length]!;
  return { fleet, site, tier: segment % 3 === 0 ? "gold" : "standard", ...(segment % 7 === 0 ? { canary: "true" } : {}) };
}

export function buildTenant(seed = 7): Tenant {
  const r = rng(seed);
  const rules: PolicyRule[] = [];
  const rule = (
    name: string,
    selector: LabelSelector,
    destinations: Destination[],
    effect: "allow" | "deny",
    conditions?: PolicyRule["conditions"],
  ) => rules.push({ id: `r${rules.length}`, name, selector, destinations, effect, ...(conditions ? { conditions } : {}) });

  // 10 tenant-wide rules.
  rule("DNS", {}, [{ cidr: "10.255.0.53/32", ports: [53], protocol: "any" }], "allow");
  rule("NTP", {}, [{ fqdn: "*.pool.ntp.org", ports: [123], protocol: "udp" }], "allow");
  rule("Sinkhole", {}, [{ cidr: "10.66.0.0/16", protocol: "any" }], "deny");
  rule("Tor exits", {}, [{ fqdn: "*.tor-exit.example", protocol: "any" }], "deny");
  rule("OTA", {}, [{ fqdn: "ota.simroot.example", ports: [443], protocol: "tcp" }], "allow");
  rule("No bulk over satellite", {}, [{ cidr: "192.0.2.0/24", protocol: "any" }], "deny", { bearers: ["satellite"] });
  rule("IPv6 telemetry", {}, [{ cidr: "2001:db8:100::/48", ports: [443, 8883], protocol: "tcp" }], "allow");
  rule("No telnet", {}, [{ cidr: "0.0.0.0/0", ports: [23], protocol: "tcp" }], "deny");
  rule("IPv6 ops", { matchLabels: { tier: "gold" } }, [{ cidr: "2001:db8:200::/40", protocol: "any" }], "allow");
  rule(
    "Canary feed",
    { matchExpressions: [{ key: "canary", operator: "Exists" }] },
    [{ fqdn: "canary.simroot.example", ports: [443], protocol: "tcp" }],
    "allow",
  );

  // 40 fleet rules.
  fleets.forEach((fleet, f) => {
    rule(
      `${fleet} ingest`,
      { matchLabels: { fleet } },
      [{ fqdn: `ingest.${fleet}.example.com`, ports: [443, 8883], protocol: "tcp" }],
      "allow",
    );
    rule(
      `${fleet} backend`,
      { matchLabels: { fleet } },
      [{ cidr: `10.${f}.0.0/16`, ports: [{ from: 8000, to: 8099 }, 443], protocol: "tcp" }],
      "allow",
    );
    rule(`${fleet} cdn`, { matchLabels: { fleet } }, [{ fqdn: `*.cdn.${fleet}.example.net`, ports: [443], protocol: "tcp" }], "allow", {
      bearers: ["cellular", "wifi", "private-5g"],
    });
    rule(`${fleet} mgmt block abroad`, { matchLabels: { fleet } }, [{ cidr: `10.${f}.200.0/24`, protocol: "any" }], "deny", {
      countries: ["US", "ES"],
    });
  });

  // 150 segment rules.
  for (let segment = 0; segment < 50; segment++) {
    const { fleet, site } = segmentLabels(segment) as { fleet: string; site: string };
    const f = Math.floor(segment / sites.length);
    for (let k = 0; k < 3; k++) {
      const selector: LabelSelector = r.pick<LabelSelector>([
        { matchLabels: { fleet, site } },
        { matchLabels: { fleet }, matchExpressions: [{ key: "site", operator: "In", values: [site, r.pick(sites)] }] },
        { matchLabels: { site }, matchExpressions: [{ key: "tier", operator: "NotIn", values: ["gold"] }] },
        { matchLabels: { fleet, site }, matchExpressions: [{ key: "canary", operator: "DoesNotExist" }] },
      ]);
      const ports = r.pick<Destination["ports"]>([
        undefined,
        [443],
        [22, 8443],
        [{ from: 8000, to: 8099 }],
        [1883, 8883],
        [{ from: 1024, to: 2047 }, 8443],
      ]);
      const prefix = r.pick([24, 26, 32]);
      const network = `10.${f}.${(segment % sites.length) * 40 + k * 8 + r.int(8)}.${prefix === 24 ? 0 : r.pick([0, 64, 128])}`;
      const destination: Destination = r.chance(0.55)
        ? { cidr: `${network}/${prefix}`, protocol: r.pick(["tcp", "udp", "any"] as const), ...(ports ? { ports } : {}) }
        : {
            fqdn: r.chance(0.5) ? `svc${k}.${site}.${fleet}.ops.example.com` : `*.${site}.${fleet}.ops.example.com`,
            protocol: r.pick(["tcp", "any"] as const),
            ...(ports ? { ports } : {}),
          };
      const roll = r.next();
      const conditions: PolicyRule["conditions"] =
        roll < 0.2
          ? {
              schedule: {
                timezone: r.chance(0.8) ? zones[site]! : "America/New_York",
                windows: [{ days: ["mon", "tue", "wed", "thu", "fri"], start: "07:00", end: r.pick(["19:00", "02:00"]) }],
              },
            }
          : roll < 0.4
            ? { countries: [r.pick(countries), r.pick(countries)].filter((c, i, all) => all.indexOf(c) === i) }
            : roll < 0.65
              ? { bearers: ["cellular", "private-5g"] }
              : undefined;
      rule(`${site} ${fleet} #${k}`, selector, [destination], r.chance(0.15) ? "deny" : "allow", conditions);
    }
  }

  const devices: BenchDevice[] = Array.from({ length: 10_000 }, (_, i) => {
    const segment = i % 50;
    const roll = r.next();
    const state = roll < 0.97 ? "active" : roll < 0.98 ? "quarantined" : roll < 0.99 ? "suspended" : "revoked";
    // Each device record holds its own frozen labels, as a PEP's device table would.
    return { id: `dev_${String(i).padStart(5, "0")}`, state, labels: Object.freeze(segmentLabels(segment)), segment };
  });

  const principals = ["vendor:acme/jane", "vendor:acme/bob", "vendor:globex/ops", "support:simroot/1", "support:simroot/2"];
  const grants: Grant[] = Array.from({ length: 30 }, (_, i) => {
    const start = weekStart + r.int(week);
    const end = start + (1 + r.int(48)) * 3_600_000;
    const f = r.int(fleets.length);
    return {
      id: `grt_${i}`,
      principal: r.pick(principals),
      target: r.chance(0.6) ? { deviceId: r.pick(devices).id } : { selector: { matchLabels: { fleet: fleets[f]! } } },
      destinations: [{ cidr: `10.${f}.250.0/24`, ports: [22, 443], protocol: "tcp" }],
      notBefore: new Date(start).toISOString(),
      notAfter: new Date(end).toISOString(),
      sessionRecording: r.chance(0.5),
      ...(i % 6 === 0 ? { revokedAt: new Date(start + (end - start) / 2).toISOString() } : {}),
    };
  });

  const set: PolicySet = {
    version: 1,
    rules,
    grants,
    settings: {
      quarantineDestinations: [
        { fqdn: "remediation.simroot.example", ports: [443], protocol: "tcp" },
        { cidr: "10.255.0.53/32", ports: [53], protocol: "udp" },
      ],
      failMode: "closed",
    },
  };
  const byId = new Map(devices.map((device) => [device.id, device]));
  // Per segment, the rules whose selector takes it in: most requests aim at one of those.
  const selectors = rules.map((rule) => compileSelector(rule.selector));
  const applicable = Array.from({ length: 50 }, (_, segment) => rules.filter((_, i) => selectors[i]!(segmentLabels(segment))));
  const context = { set, devices, byId, principals, applicable };
  return { set, devices, requests: Array.from({ length: 1 << 16 }, () => request(r, context)) };
}

function addressIn(r: ReturnType<typeof rng>, cidr: string): string {
  const [address, prefix] = cidr.split("/") as [string, string];
  if (address.includes(":")) return address.replace(/::$/, `::${r.int(0xffff).toString(16)}`);
  const base = address.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const n = base + r.int(2 ** (32 - Number(prefix)));
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

interface RequestContext {
  readonly set: PolicySet;
  readonly devices: readonly BenchDevice[];
  readonly byId: ReadonlyMap<string, BenchDevice>;
  readonly principals: readonly string[];
  readonly applicable: readonly (readonly PolicyRule[])[];
}

function request(r: ReturnType<typeof rng>, { set, devices, byId, principals, applicable }: RequestContext): DecisionInput {
  const grant = r.chance(0.03) ? r.pick(set.grants) : undefined;
  const device = grant && "deviceId" in grant.target && r.chance(0.7) ? byId.get(grant.target.deviceId)! : r.pick(devices);
  const roll = r.next();
  const target = grant
    ? grant.destinations[0]!
    : roll < 0.6
      ? r.pick(r.pick(applicable[device.segment]!).destinations)
      : roll < 0.75
        ? r.pick(r.pick(set.rules).destinations)
        : undefined;
  let destination: DecisionInput["destination"];
  if (target?.cidr) destination = { ip: addressIn(r, target.cidr) };
  else if (target?.fqdn) destination = { fqdn: target.fqdn.replace(/^\*/, r.pick(["a", "edge-7", "x.y"])) };
  else
    destination = r.chance(0.5)
      ? { ip: `${r.pick([10, 172, 198, 203])}.${r.int(256)}.${r.int(256)}.${r.int(256)}` }
      : { fqdn: `h${r.int(500)}.example.org` };
  if (destination.fqdn && r.chance(0.2)) destination = { ...destination, ip: `10.${r.int(12)}.${r.int(256)}.${r.int(256)}` };
  const listed = target?.ports?.flatMap((p) => (typeof p === "number" ? [p] : [p.from, p.to, Math.floor((p.from + p.to) / 2)]));
  const country = r.chance(0.85) ? r.pick(countries) : undefined;
  return {
    device: { id: device.id, state: device.state, labels: device.labels },
    destination,
    port: listed && r.chance(0.8) ? r.pick(listed) : r.pick(commonPorts),
    protocol: target && target.protocol !== "any" && r.chance(0.9) ? target.protocol : r.chance(0.8) ? "tcp" : "udp",
    bearer: r.pick(bearers),
    ...(country ? { country } : {}),
    at:
      grant && r.chance(0.7)
        ? Date.parse(grant.notBefore) + r.int(Date.parse(grant.notAfter) - Date.parse(grant.notBefore))
        : weekStart + r.int(week),
    ...(grant ? { principal: r.chance(0.9) ? grant.principal : r.pick(principals) } : {}),
  };
}

/** The rules casbin and Cedar can express: without schedule conditions (neither has time zones or weekdays). */
export function expressibleSubset(set: PolicySet): PolicySet {
  return { ...set, rules: set.rules.filter((rule) => rule.conditions?.schedule === undefined) };
}
