import { describe, expect, it } from "vitest";
import { isSimrootError } from "../error.ts";
import { compilePolicy } from "./compile.ts";
import { decideOrFail } from "./evaluate.ts";
import type { DecisionInput, PolicyRule, PolicySetInput } from "./model.ts";

const at = Date.parse("2025-03-03T10:00:00Z");

const request = (overrides: Partial<DecisionInput> = {}): DecisionInput => ({
  device: { id: "dev_1", state: "active", labels: { fleet: "meters", site: "lyon" } },
  destination: { fqdn: "ingest.example.com" },
  port: 443,
  protocol: "tcp",
  bearer: "cellular",
  at,
  ...overrides,
});

const allowIngest: PolicyRule = {
  id: "allow-ingest",
  name: "Meters send telemetry",
  selector: { matchLabels: { fleet: "meters" } },
  destinations: [{ fqdn: "ingest.example.com", ports: [443], protocol: "tcp" }],
  effect: "allow",
};

const engineOf = (set: Partial<PolicySetInput>) => compilePolicy({ version: 1, ...set });

describe("decide: device state", () => {
  const engine = engineOf({
    rules: [allowIngest],
    settings: { quarantineDestinations: [{ fqdn: "remediation.example.com", ports: [443], protocol: "tcp" }] },
  });

  it("allows an active device what a rule allows, and nothing else (default deny)", () => {
    expect(engine.decide(request())).toMatchObject({ allow: true, reason: "allow.rule", ruleId: "allow-ingest" });
    expect(engine.decide(request({ destination: { fqdn: "other.example.com" } }))).toMatchObject({ allow: false, reason: "deny.default" });
  });

  it("denies a revoked device everything, even what a rule allows", () => {
    const device = { id: "dev_1", state: "revoked" as const, labels: { fleet: "meters" } };
    expect(engine.decide(request({ device }))).toMatchObject({ allow: false, reason: "deny.revoked" });
  });

  it("denies a suspended device everything", () => {
    const device = { id: "dev_1", state: "suspended" as const, labels: { fleet: "meters" } };
    expect(engine.decide(request({ device }))).toMatchObject({ allow: false, reason: "deny.suspended" });
  });

  it("lets a quarantined device reach only the quarantine destinations", () => {
    const device = { id: "dev_1", state: "quarantined" as const, labels: { fleet: "meters" } };
    expect(engine.decide(request({ device }))).toMatchObject({ allow: false, reason: "deny.quarantined" });
    expect(engine.decide(request({ device, destination: { fqdn: "remediation.example.com" } }))).toMatchObject({
      allow: true,
      reason: "allow.quarantine",
    });
    expect(engine.decide(request({ device, destination: { fqdn: "remediation.example.com" }, port: 80 }))).toMatchObject({
      allow: false,
      reason: "deny.quarantined",
    });
  });

  it("does not let a deny rule block the quarantine path, nor a grant widen it", () => {
    const quarantined = engineOf({
      rules: [{ ...allowIngest, id: "deny-all", effect: "deny", selector: {}, destinations: [{ cidr: "0.0.0.0/0", protocol: "any" }] }],
      grants: [
        {
          id: "g1",
          principal: "vendor",
          target: { deviceId: "dev_1" },
          destinations: [{ cidr: "0.0.0.0/0", protocol: "any" }],
          notBefore: "2025-01-01T00:00:00Z",
          notAfter: "2026-01-01T00:00:00Z",
          sessionRecording: false,
        },
      ],
      settings: { quarantineDestinations: [{ cidr: "10.9.9.0/24", protocol: "tcp" }] },
    });
    const device = { id: "dev_1", state: "quarantined" as const, labels: {} };
    expect(quarantined.decide(request({ device, destination: { ip: "10.9.9.9" } })).reason).toBe("allow.quarantine");
    expect(quarantined.decide(request({ device, destination: { ip: "10.9.8.1" }, principal: "vendor" })).reason).toBe("deny.quarantined");
  });
});

describe("decide: rules", () => {
  it("lets an explicit deny beat any allow, whatever the rule order", () => {
    const deny: PolicyRule = {
      ...allowIngest,
      id: "deny-ingest",
      name: "No ingest from Lyon",
      selector: { matchLabels: { site: "lyon" } },
      effect: "deny",
    };
    for (const rules of [
      [allowIngest, deny],
      [deny, allowIngest],
    ]) {
      expect(engineOf({ rules }).decide(request())).toMatchObject({ allow: false, reason: "deny.rule", ruleId: "deny-ingest" });
    }
    expect(
      engineOf({ rules: [allowIngest, deny] }).decide(
        request({ device: { id: "d", state: "active", labels: { fleet: "meters", site: "porto" } } }),
      ),
    ).toMatchObject({
      allow: true,
      ruleId: "allow-ingest",
    });
  });

  it("names the first matching rule in set order", () => {
    const second = { ...allowIngest, id: "second" };
    expect(engineOf({ rules: [allowIngest, second] }).decide(request()).ruleId).toBe("allow-ingest");
    expect(engineOf({ rules: [second, allowIngest] }).decide(request()).ruleId).toBe("second");
  });

  it("denies by address even when the name is allowed, when the request carries both", () => {
    const engine = engineOf({
      rules: [
        allowIngest,
        { id: "no-sinkhole", name: "Sinkhole", selector: {}, destinations: [{ cidr: "198.51.100.0/24", protocol: "any" }], effect: "deny" },
      ],
    });
    expect(engine.decide(request({ destination: { fqdn: "ingest.example.com", ip: "203.0.113.7" } })).allow).toBe(true);
    expect(engine.decide(request({ destination: { fqdn: "ingest.example.com", ip: "198.51.100.7" } })).reason).toBe("deny.rule");
  });

  it("applies rules by selector: devices outside it are denied by default", () => {
    const engine = engineOf({ rules: [allowIngest] });
    expect(engine.decide(request({ device: { id: "d", state: "active", labels: { fleet: "cameras" } } })).reason).toBe("deny.default");
    expect(engine.decide(request({ device: { id: "d", state: "active", labels: {} } })).reason).toBe("deny.default");
  });

  it("gives the same decisions for frozen (cached by identity) and plain labels, and reorders keys safely", () => {
    const engine = engineOf({ rules: [allowIngest] });
    const frozen = Object.freeze({ site: "lyon", fleet: "meters" });
    for (let i = 0; i < 3; i++) {
      expect(engine.decide(request({ device: { id: "d", state: "active", labels: frozen } })).allow).toBe(true);
      expect(engine.decide(request({ device: { id: "d", state: "active", labels: { fleet: "cameras" } } })).allow).toBe(false);
    }
    const mutable: Record<string, string> = { fleet: "meters" };
    expect(engine.decide(request({ device: { id: "d", state: "active", labels: mutable } })).allow).toBe(true);
    mutable.fleet = "cameras";
    expect(engine.decide(request({ device: { id: "d", state: "active", labels: mutable } })).allow).toBe(false);
  });

  it("returns frozen decisions", () => {
    const decision = engineOf({ rules: [allowIngest] }).decide(request());
    expect(Object.isFrozen(decision)).toBe(true);
  });
});

describe("compilePolicy", () => {
  it("rejects an invalid set with policy.invalid naming the field", () => {
    try {
      compilePolicy({ version: 1, rules: [{ ...allowIngest, destinations: [{ cidr: "10.1.2.3/8", protocol: "tcp" }] }] });
      expect.unreachable();
    } catch (error) {
      expect(isSimrootError(error) && error.code).toBe("policy.invalid");
      expect(isSimrootError(error) && error.issues[0]?.path).toBe("rules.0.destinations.0.cidr");
    }
  });

  it("exposes version and fail mode, closed by default", () => {
    const closed = engineOf({});
    expect(closed.version).toBe(1);
    expect(closed.failMode).toBe("closed");
    expect(closed.failDecision).toMatchObject({ allow: false, reason: "deny.fail-closed" });
    const open = engineOf({ settings: { failMode: "open" } });
    expect(open.failDecision).toMatchObject({ allow: true, reason: "allow.fail-open" });
  });

  it("decideOrFail applies the fail mode when the input cannot be decided", () => {
    const broken = { ...request(), device: { id: "d", state: "active", labels: null } } as unknown as DecisionInput;
    expect(decideOrFail(engineOf({}), broken).reason).toBe("deny.fail-closed");
    expect(decideOrFail(engineOf({ settings: { failMode: "open" } }), broken).reason).toBe("allow.fail-open");
    expect(decideOrFail(engineOf({ rules: [allowIngest] }), request()).reason).toBe("allow.rule");
  });
});
