/**
 * fast-check generators for the property test: small pools (labels, hosts, address words)
 * so that rules and requests collide often, and requests aimed at the edges of the set they
 * are decided against (first/last/neighbouring addresses of each network, range-end ports,
 * grant boundaries, DST transitions).
 */
import fc from "fast-check";
import type { Conditions, DecisionInput, Destination, Grant, LabelSelector, PolicyRule, PolicySet } from "./model.ts";

const labelKeys = ["app", "site", "tier"];
const labelValues = ["a", "b"];
const labels = fc.dictionary(fc.constantFrom(...labelKeys), fc.constantFrom(...labelValues), { maxKeys: 3 });

const selector: fc.Arbitrary<LabelSelector> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({}) },
  {
    weight: 3,
    arbitrary: fc.record(
      {
        matchLabels: fc.dictionary(fc.constantFrom(...labelKeys), fc.constantFrom(...labelValues), { maxKeys: 1 }),
        matchExpressions: fc.array(
          fc.oneof(
            fc.record({
              key: fc.constantFrom(...labelKeys),
              operator: fc.constantFrom("In" as const, "NotIn" as const),
              values: fc.uniqueArray(fc.constantFrom(...labelValues), { minLength: 1, maxLength: 2 }),
            }),
            fc.record({ key: fc.constantFrom(...labelKeys), operator: fc.constantFrom("Exists" as const, "DoesNotExist" as const) }),
          ),
          { maxLength: 2 },
        ),
      },
      { requiredKeys: [] },
    ),
  },
);

const v4Address = fc
  .tuple(...Array.from({ length: 4 }, () => fc.constantFrom(0, 10, 128, 255)))
  .map((b) => b.reduce<number>((acc, x) => acc * 256 + x, 0));
const v6Words = fc.tuple(...Array.from({ length: 4 }, () => fc.constantFrom(0, 0x20010db8, 0x80000000, 0xffffffff)));
const v4Prefix = fc.oneof(fc.constantFrom(0, 1, 8, 16, 24, 31, 32), fc.integer({ min: 0, max: 32 }));
const v6Prefix = fc.oneof(fc.constantFrom(0, 1, 31, 32, 33, 64, 96, 127, 128), fc.integer({ min: 0, max: 128 }));

const v4Text = (n: bigint) => [24n, 16n, 8n, 0n].map((shift) => String((n >> shift) & 255n)).join(".");
function v6Text(n: bigint, compress: boolean): string {
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => ((n >> shift) & 0xffffn).toString(16)).join(":");
  return compress ? groups.replace(/(^|:)0(:0)+(:|$)/, "::") : groups;
}
const toBig = (words: number[]) => words.reduce((acc, w) => (acc << 32n) | BigInt(w >>> 0), 0n);
const maskBig = (value: bigint, bits: number, prefix: number) => (value >> BigInt(bits - prefix)) << BigInt(bits - prefix);

const cidr = fc.oneof(
  fc.tuple(v4Address, v4Prefix).map(([a, p]) => `${v4Text(maskBig(BigInt(a), 32, p))}/${p}`),
  fc.tuple(v6Words, v6Prefix, fc.boolean()).map(([words, p, compress]) => {
    let network = maskBig(toBig(words), 128, p);
    // A network that reads as IPv4-mapped is rejected by the schema: keep generated ones off it.
    if (network >> 32n === 0xffffn) network ^= 1n << 33n;
    return `${v6Text(network, compress)}/${p}`;
  }),
);

export const hosts = ["a.example.com", "b.a.example.com", "example.com", "x.test"];
const fqdnPattern = fc.constantFrom(...hosts, "*.example.com", "*.a.example.com", "*.test", "A.Example.com.");
const ports = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  {
    weight: 3,
    arbitrary: fc.array(
      fc.oneof(fc.constantFrom(22, 53, 443), fc.constantFrom({ from: 8000, to: 8099 }, { from: 0, to: 1023 }, { from: 443, to: 443 })),
      { minLength: 1, maxLength: 3 },
    ),
  },
);
const protocol = fc.constantFrom("tcp" as const, "udp" as const, "any" as const);
const compact = <T extends object>(value: T): T => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

const destination: fc.Arbitrary<Destination> = fc
  .oneof(fc.record({ fqdn: fqdnPattern, ports, protocol }), fc.record({ cidr, ports, protocol }, { requiredKeys: ["cidr", "protocol"] }))
  .map((d) => compact(d as Destination));

const hhmm = (m: number) => `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
const clock = fc.oneof(
  fc.constantFrom("00:00", "01:30", "02:00", "02:30", "03:00", "09:00", "22:00", "23:59"),
  fc.integer({ min: 0, max: 1439 }).map(hhmm),
);
const window = fc
  .record({
    days: fc.uniqueArray(fc.constantFrom("mon", "tue", "wed", "thu", "fri", "sat", "sun"), { minLength: 1, maxLength: 4 }),
    start: clock,
    end: fc.oneof(clock, fc.constant("24:00")),
  })
  .filter((w) => w.start !== w.end);
const conditions: fc.Arbitrary<Conditions | undefined> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  {
    weight: 1,
    arbitrary: fc.record({
      bearers: fc.uniqueArray(fc.constantFrom("cellular" as const, "private-5g" as const, "wifi" as const, "satellite" as const), {
        minLength: 1,
        maxLength: 3,
      }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ countries: fc.uniqueArray(fc.constantFrom("FR", "DE", "PT"), { minLength: 1, maxLength: 2 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      schedule: fc.record({
        timezone: fc.constantFrom("UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"),
        windows: fc.array(window, { minLength: 1, maxLength: 2 }),
      }),
    }),
  },
);

const from = Date.parse("2025-03-01T00:00:00Z");
const to = Date.parse("2025-04-10T00:00:00Z");
/** DST transitions in the range: US (New York), EU (Paris), Lord Howe (a 30-minute shift). */
const transitions = ["2025-03-09T07:00:00Z", "2025-03-30T01:00:00Z", "2025-04-05T15:00:00Z"].map(Date.parse);
const instant = fc.oneof(
  fc.integer({ min: from, max: to }),
  fc.tuple(fc.constantFrom(...transitions), fc.integer({ min: -3 * 3_600_000, max: 3 * 3_600_000 })).map(([t, d]) => t + d),
);
const iso = (ms: number) => new Date(ms).toISOString();

const rule = fc.record({
  name: fc.constant("r"),
  selector,
  destinations: fc.array(destination, { minLength: 1, maxLength: 3 }),
  conditions,
  effect: fc.constantFrom("allow" as const, "allow" as const, "deny" as const),
});

const grant = fc
  .record({
    principal: fc.constantFrom("p1", "p2"),
    target: fc.oneof(fc.record({ deviceId: fc.constantFrom("d1", "d2") }), fc.record({ selector })),
    destinations: fc.array(destination, { minLength: 1, maxLength: 2 }),
    window: fc.tuple(instant, instant).filter(([a, b]) => a !== b),
    sessionRecording: fc.boolean(),
    revokedAt: fc.option(instant, { nil: undefined, freq: 2 }),
  })
  .map(({ window: [a, b], revokedAt, ...g }) => ({
    ...g,
    notBefore: iso(Math.min(a, b)),
    notAfter: iso(Math.max(a, b)),
    revokedAt: revokedAt === undefined ? undefined : iso(revokedAt),
  }));

export const policySet: fc.Arbitrary<PolicySet> = fc
  .record({
    rules: fc.array(rule, { maxLength: 10 }),
    grants: fc.array(grant, { maxLength: 4 }),
    quarantine: fc.array(destination, { maxLength: 2 }),
    failMode: fc.constantFrom("closed" as const, "open" as const),
  })
  .map(({ rules, grants, quarantine, failMode }) => ({
    version: 1,
    rules: rules.map((r, i) => compact({ ...r, id: `r${i}` })) as PolicyRule[],
    grants: grants.map((g, i) => compact({ ...g, id: `g${i}` })) as Grant[],
    settings: { quarantineDestinations: quarantine, failMode },
  }));

/** Addresses at and just beyond both ends of every network in the set. */
function edgeAddresses(set: PolicySet): string[] {
  const destinations = [
    ...set.rules.flatMap((r) => r.destinations),
    ...set.grants.flatMap((g) => g.destinations),
    ...set.settings.quarantineDestinations,
  ];
  return destinations.flatMap((d) => {
    if (!d.cidr) return [];
    const [address, prefixText] = d.cidr.split("/") as [string, string];
    const v6 = address.includes(":");
    const bits = v6 ? 128 : 32;
    const network = v6 ? parseV6(address) : address.split(".").reduce((acc, o) => acc * 256n + BigInt(o), 0n);
    const size = 1n << BigInt(bits - Number(prefixText));
    const top = (1n << BigInt(bits)) - 1n;
    return [network, network + size - 1n, network - 1n, network + size]
      .filter((n) => n >= 0n && n <= top)
      .map((n) => (v6 ? v6Text(n, true) : v4Text(n)));
  });
}

/** Enough for the generator's own output (no embedded IPv4). */
function parseV6(text: string): bigint {
  const [head = "", tail] = text.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n);
}

function edgeInstants(set: PolicySet): number[] {
  return set.grants.flatMap((g) => [g.notBefore, g.notAfter, g.revokedAt].flatMap((t) => (t ? [Date.parse(t) - 1, Date.parse(t)] : [])));
}

const requestHost = fc.constantFrom(...hosts, "A.EXAMPLE.COM", "a.example.com.", "deep.b.a.example.com", "test", "other.org");

function request(set: PolicySet, moreTimes: readonly number[] = []): fc.Arbitrary<DecisionInput> {
  const edges = edgeAddresses(set);
  const times = [...edgeInstants(set), ...moreTimes];
  const ip = fc.oneof(
    v4Address.map((a) => v4Text(BigInt(a))),
    v4Address.map((a) => `::ffff:${v4Text(BigInt(a))}`),
    fc.tuple(v6Words, fc.boolean()).map(([w, c]) => v6Text(toBig(w), c)),
    ...(edges.length ? [fc.constantFrom(...edges), fc.constantFrom(...edges)] : []),
  );
  return fc
    .record({
      id: fc.constantFrom("d1", "d2", "d3"),
      state: fc.constantFrom("active", "active", "active", "active", "quarantined", "suspended", "revoked"),
      labels,
      ip: fc.option(ip, { nil: undefined, freq: 3 }),
      fqdn: fc.option(requestHost, { nil: undefined, freq: 3 }),
      port: fc.constantFrom(0, 22, 53, 443, 444, 1023, 1024, 7999, 8000, 8099, 8100),
      protocol: fc.constantFrom("tcp" as const, "udp" as const),
      bearer: fc.constantFrom("cellular" as const, "private-5g" as const, "wifi" as const, "satellite" as const),
      country: fc.option(fc.constantFrom("FR", "DE", "PT", "US"), { nil: undefined, freq: 4 }),
      at: times.length ? fc.oneof(instant, fc.constantFrom(...times)) : instant,
      principal: fc.option(fc.constantFrom("p1", "p2", "p3"), { nil: undefined, freq: 2 }),
      frozen: fc.boolean(),
    })
    .map(({ id, state, labels, ip, fqdn, frozen, ...rest }) => ({
      ...rest,
      device: { id, state: state as DecisionInput["device"]["state"], labels: frozen ? Object.freeze({ ...labels }) : labels },
      destination: ip === undefined && fqdn === undefined ? { fqdn: "a.example.com" } : { ip, fqdn },
    }));
}

/** A policy set and requests aimed at it. */
export const policyWithRequests: fc.Arbitrary<[PolicySet, DecisionInput[]]> = policySet.chain((set) =>
  fc.tuple(fc.constant(set), fc.array(request(set), { minLength: 1, maxLength: 40 })),
);

/**
 * A policy set, the instant it is compiled at (by the deciding clock: a revoked grant ends there at the latest) and
 * requests aimed at both, some at the instant itself and the millisecond before.
 */
export const compiledPolicyWithRequests: fc.Arbitrary<[PolicySet, number, DecisionInput[]]> = policySet.chain((set) =>
  instant.chain((compiledAt) =>
    fc.tuple(
      fc.constant(set),
      fc.constant(compiledAt),
      fc.array(request(set, [compiledAt - 1, compiledAt]), { minLength: 1, maxLength: 40 }),
    ),
  ),
);
