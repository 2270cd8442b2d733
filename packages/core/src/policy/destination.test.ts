import { describe, expect, it } from "vitest";
import { compilePolicy } from "./compile.ts";
import { refuseLegacyForms, type DecisionInput, type Destination } from "./model.ts";

const allowing = (...destinations: Destination[]) =>
  compilePolicy({ version: 1, rules: [{ id: "r", name: "r", selector: {}, destinations, effect: "allow" }] });

const ask = (destination: DecisionInput["destination"], port = 443, protocol: "tcp" | "udp" = "tcp"): DecisionInput => ({
  device: { id: "dev_1", state: "active", labels: {} },
  destination,
  port,
  protocol,
  bearer: "cellular",
  at: 0,
});

describe("fqdn destinations", () => {
  const exact = allowing({ fqdn: "api.example.com", protocol: "tcp" });
  const wildcard = allowing({ fqdn: "*.example.com", protocol: "tcp" });

  it("matches an exact host, case-insensitively and with the root dot", () => {
    expect(exact.decide(ask({ fqdn: "api.example.com" })).allow).toBe(true);
    expect(exact.decide(ask({ fqdn: "API.Example.COM." })).allow).toBe(true);
    expect(exact.decide(ask({ fqdn: "x.api.example.com" })).allow).toBe(false);
    expect(exact.decide(ask({ fqdn: "example.com" })).allow).toBe(false);
  });

  it("matches subdomains of a wildcard at any depth, never the apex or look-alikes", () => {
    expect(wildcard.decide(ask({ fqdn: "a.example.com" })).allow).toBe(true);
    expect(wildcard.decide(ask({ fqdn: "a.b.example.com" })).allow).toBe(true);
    expect(wildcard.decide(ask({ fqdn: "example.com" })).allow).toBe(false);
    expect(wildcard.decide(ask({ fqdn: "badexample.com" })).allow).toBe(false);
    expect(wildcard.decide(ask({ fqdn: "a.example.com.evil.net" })).allow).toBe(false);
  });

  it("tells apart wildcard suffixes whose index hashes collide", () => {
    // `ana.example` and `a0c.example` share a suffix hash in the index: the suffix itself decides.
    const engine = allowing({ fqdn: "*.ana.example", protocol: "tcp" });
    expect(engine.decide(ask({ fqdn: "x.ana.example" })).allow).toBe(true);
    expect(engine.decide(ask({ fqdn: "x.a0c.example" })).allow).toBe(false);
  });

  it("does not match a host rule by address or an address rule by host", () => {
    expect(exact.decide(ask({ ip: "203.0.113.1" })).allow).toBe(false);
    expect(allowing({ cidr: "203.0.113.0/24", protocol: "tcp" }).decide(ask({ fqdn: "host-203-0-113-1.example.com" })).allow).toBe(false);
  });
});

describe("cidr destinations", () => {
  it("includes both ends of an IPv4 range and excludes the addresses next to it", () => {
    const engine = allowing({ cidr: "10.20.0.0/16", protocol: "any" });
    expect(engine.decide(ask({ ip: "10.20.0.0" })).allow).toBe(true);
    expect(engine.decide(ask({ ip: "10.20.255.255" })).allow).toBe(true);
    expect(engine.decide(ask({ ip: "10.19.255.255" })).allow).toBe(false);
    expect(engine.decide(ask({ ip: "10.21.0.0" })).allow).toBe(false);
  });

  it("handles /0 and /32 and IPv4-mapped IPv6 requests", () => {
    expect(allowing({ cidr: "0.0.0.0/0", protocol: "any" }).decide(ask({ ip: "255.255.255.255" })).allow).toBe(true);
    expect(allowing({ cidr: "0.0.0.0/0", protocol: "any" }).decide(ask({ ip: "2001:db8::1" })).allow).toBe(false);
    const host = allowing({ cidr: "192.0.2.7/32", protocol: "any" });
    expect(host.decide(ask({ ip: "192.0.2.7" })).allow).toBe(true);
    expect(host.decide(ask({ ip: "192.0.2.8" })).allow).toBe(false);
    expect(host.decide(ask({ ip: "::ffff:192.0.2.7" })).allow).toBe(true);
    expect(host.decide(ask({ ip: "::ffff:c000:207" })).allow).toBe(true);
  });

  it("includes both ends of an IPv6 range, across a word boundary, and excludes its neighbours", () => {
    const engine = allowing({ cidr: "2001:db8:0:1::/64", protocol: "any" });
    expect(engine.decide(ask({ ip: "2001:db8:0:1::" })).allow).toBe(true);
    expect(engine.decide(ask({ ip: "2001:db8:0:1:ffff:ffff:ffff:ffff" })).allow).toBe(true);
    expect(engine.decide(ask({ ip: "2001:db8:0:0:ffff:ffff:ffff:ffff" })).allow).toBe(false);
    expect(engine.decide(ask({ ip: "2001:db8:0:2::" })).allow).toBe(false);
    expect(engine.decide(ask({ ip: "2001:DB8:0:1:0:0:0:1" })).allow).toBe(true);
    const odd = allowing({ cidr: "2001:db8:8000::/33", protocol: "any" });
    expect(odd.decide(ask({ ip: "2001:db8:8000::1" })).allow).toBe(true);
    expect(odd.decide(ask({ ip: "2001:db8:7fff:ffff::1" })).allow).toBe(false);
    expect(allowing({ cidr: "::/0", protocol: "any" }).decide(ask({ ip: "10.0.0.1" })).allow).toBe(false);
  });

  it("matches a /128 host exactly", () => {
    const engine = allowing({ cidr: "2001:db8::42/128", protocol: "any" });
    expect(engine.decide(ask({ ip: "2001:db8::42" })).allow).toBe(true);
    expect(engine.decide(ask({ ip: "2001:db8::43" })).allow).toBe(false);
  });

  it("matches nothing for an unparseable request address", () => {
    expect(allowing({ cidr: "0.0.0.0/0", protocol: "any" }).decide(ask({ ip: "10.0.0.256" })).allow).toBe(false);
  });
});

describe("ports and protocol", () => {
  const engine = allowing({ cidr: "10.0.0.0/8", ports: [22, { from: 8000, to: 8099 }, 9000], protocol: "tcp" });

  it("matches listed ports and both ends of ranges, nothing between or beyond", () => {
    for (const port of [22, 8000, 8050, 8099, 9000]) expect(engine.decide(ask({ ip: "10.1.1.1" }, port)).allow).toBe(true);
    for (const port of [21, 23, 7999, 8100, 8999, 9001, 0, 65535]) expect(engine.decide(ask({ ip: "10.1.1.1" }, port)).allow).toBe(false);
  });

  it("treats absent ports as any port", () => {
    const any = allowing({ cidr: "10.0.0.0/8", protocol: "tcp" });
    for (const port of [0, 1, 443, 65535]) expect(any.decide(ask({ ip: "10.1.1.1" }, port)).allow).toBe(true);
  });

  it("restricts tcp destinations to tcp, and lets protocol any match tcp and udp", () => {
    expect(engine.decide(ask({ ip: "10.1.1.1" }, 22, "udp")).allow).toBe(false);
    const udp = allowing({ cidr: "10.0.0.0/8", protocol: "udp" });
    expect(udp.decide(ask({ ip: "10.1.1.1" }, 53, "udp")).allow).toBe(true);
    expect(udp.decide(ask({ ip: "10.1.1.1" }, 53, "tcp")).allow).toBe(false);
    const any = allowing({ cidr: "10.0.0.0/8", protocol: "any" });
    expect(any.decide(ask({ ip: "10.1.1.1" }, 53, "udp")).allow).toBe(true);
    expect(any.decide(ask({ ip: "10.1.1.1" }, 53, "tcp")).allow).toBe(true);
  });

  it("checks port and protocol per destination, not across a rule's destinations", () => {
    const mixed = allowing(
      { cidr: "10.0.0.0/8", ports: [22], protocol: "tcp" },
      { fqdn: "ntp.example.com", ports: [123], protocol: "udp" },
    );
    expect(mixed.decide(ask({ ip: "10.1.1.1" }, 123, "udp")).allow).toBe(false);
    expect(mixed.decide(ask({ fqdn: "ntp.example.com" }, 22, "tcp")).allow).toBe(false);
    expect(mixed.decide(ask({ fqdn: "ntp.example.com" }, 123, "udp")).allow).toBe(true);
  });
});

describe("an address given where a host name is expected (review 122)", () => {
  it("is refused in a new rule (an address is a network, given as cidr), and a stored one means the address", () => {
    const refused = (fqdn: string) => {
      try {
        refuseLegacyForms({ destinations: [{ fqdn, protocol: "any" }] });
        return undefined;
      } catch (error) {
        return (error as { issues?: { path: string }[] }).issues?.[0]?.path;
      }
    };
    for (const fqdn of ["10.0.0.1", "10.0.0.1.", "*.0.0.1", "192.168.1.255"]) expect(refused(fqdn), fqdn).toBe("destinations.0.fqdn");
    for (const fqdn of ["10.example.com", "1e100.net", "api-2.example.com"]) expect(refused(fqdn), fqdn).toBeUndefined();
    // Stored before rules refused it (review 126): the set still compiles, and the rule decides as the address.
    const stored = compilePolicy({
      version: 1,
      rules: [
        { id: "lan", name: "LAN", selector: {}, destinations: [{ cidr: "10.0.0.0/8", protocol: "tcp" }], effect: "allow" },
        { id: "gw", name: "Never the gateway", selector: {}, destinations: [{ fqdn: "10.0.0.1", protocol: "any" }], effect: "deny" },
      ],
    });
    expect(stored.decide(ask({ ip: "10.0.0.1" }))).toMatchObject({ allow: false, ruleId: "gw" });
    expect(stored.decide(ask({ ip: "10.0.0.2" }))).toMatchObject({ allow: true, ruleId: "lan" });
  });

  it("is decided as the address when a request names it as its host, as a PEP reads such a Host header", () => {
    // What-if asked by name decided 10.0.0.1 by host rules only (none matched: the LAN allow applied), while the PEP
    // turns the Host header `10.0.0.1` into the address and the deny rule on it applies.
    const engine = compilePolicy({
      version: 1,
      rules: [
        { id: "lan", name: "LAN", selector: {}, destinations: [{ cidr: "10.0.0.0/8", protocol: "tcp" }], effect: "allow" },
        { id: "gw", name: "Never the gateway", selector: {}, destinations: [{ cidr: "10.0.0.1/32", protocol: "any" }], effect: "deny" },
      ],
    });
    for (const destination of [{ ip: "10.0.0.1" }, { fqdn: "10.0.0.1" }, { fqdn: "10.0.0.1." }]) {
      expect(engine.decide(ask(destination)), JSON.stringify(destination)).toMatchObject({ allow: false, ruleId: "gw" });
    }
    expect(engine.decide(ask({ fqdn: "10.0.0.2" }))).toMatchObject({ allow: true, ruleId: "lan" });
  });
});
