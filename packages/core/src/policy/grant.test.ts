import { describe, expect, it } from "vitest";
import { compilePolicy } from "./compile.ts";
import type { DecisionInput, Grant, PolicyRule } from "./model.ts";

const vendorSsh: Grant = {
  id: "grt_1",
  principal: "vendor:acme/jane",
  target: { deviceId: "dev_1" },
  destinations: [{ cidr: "10.8.0.0/24", ports: [22], protocol: "tcp" }],
  notBefore: "2025-03-01T08:00:00Z",
  notAfter: "2025-03-01T12:00:00Z",
  sessionRecording: true,
};

const ask = (overrides: Partial<DecisionInput> = {}): DecisionInput => ({
  device: { id: "dev_1", state: "active", labels: { fleet: "meters" } },
  destination: { ip: "10.8.0.5" },
  port: 22,
  protocol: "tcp",
  bearer: "cellular",
  at: Date.parse("2025-03-01T09:00:00Z"),
  principal: "vendor:acme/jane",
  ...overrides,
});

const engineWith = (grants: Grant[], rules: PolicyRule[] = []) => compilePolicy({ version: 1, rules, grants });

describe("grants", () => {
  it("allows the principal within [notBefore, notAfter) and tells the PEP to record", () => {
    const engine = engineWith([vendorSsh]);
    expect(engine.decide(ask())).toMatchObject({ allow: true, reason: "allow.grant", grantId: "grt_1", sessionRecording: true });
    expect(engine.decide(ask({ at: Date.parse("2025-03-01T08:00:00Z") })).allow).toBe(true);
    expect(engine.decide(ask({ at: Date.parse("2025-03-01T07:59:59.999Z") })).reason).toBe("deny.default");
    expect(engine.decide(ask({ at: Date.parse("2025-03-01T12:00:00Z") })).reason).toBe("deny.default");
    expect(engine.decide(ask({ at: Date.parse("2025-03-01T11:59:59.999Z") })).allow).toBe(true);
  });

  it("stops applying at revokedAt, before notAfter", () => {
    const engine = engineWith([{ ...vendorSsh, revokedAt: "2025-03-01T09:30:00Z" }]);
    expect(engine.decide(ask({ at: Date.parse("2025-03-01T09:29:59Z") })).allow).toBe(true);
    expect(engine.decide(ask({ at: Date.parse("2025-03-01T09:30:00Z") })).allow).toBe(false);
    expect(engine.decide(ask({ at: Date.parse("2025-03-01T11:00:00Z") })).allow).toBe(false);
  });

  it("ends a revoked grant when its revocation is compiled, if its revokedAt (the revoker's clock) is later (review 105)", () => {
    // Revoked on an instance whose clock was 20 minutes fast; compiled at 09:10 by a clock on time.
    const revoked = { ...vendorSsh, revokedAt: "2025-03-01T09:30:00Z" };
    const engine = compilePolicy({ version: 1, rules: [], grants: [revoked] }, Date.parse("2025-03-01T09:10:00Z"));
    expect(engine.decide(ask({ at: Date.parse("2025-03-01T09:09:59Z") })).allow).toBe(true);
    expect(engine.decide(ask({ at: Date.parse("2025-03-01T09:10:00Z") })).allow).toBe(false);
    // A grant not revoked is not cut by when it was compiled.
    const kept = compilePolicy({ version: 1, rules: [], grants: [vendorSsh] }, Date.parse("2025-03-01T09:10:00Z"));
    expect(kept.decide(ask({ at: Date.parse("2025-03-01T11:00:00Z") })).allow).toBe(true);
  });

  it("applies only to its principal, its device and its destinations", () => {
    const engine = engineWith([vendorSsh]);
    expect(engine.decide(ask({ principal: "vendor:acme/bob" })).allow).toBe(false);
    expect(engine.decide(ask({ device: { id: "dev_2", state: "active", labels: { fleet: "meters" } } })).allow).toBe(false);
    expect(engine.decide(ask({ destination: { ip: "10.8.1.5" } })).allow).toBe(false);
    expect(engine.decide(ask({ port: 23 })).allow).toBe(false);
    expect(engine.decide(ask({ protocol: "udp" })).allow).toBe(false);
  });

  it("matches IPv6 grant destinations on every word of the address", () => {
    const engine = engineWith([{ ...vendorSsh, destinations: [{ cidr: "2001:db8::42/128", protocol: "tcp" }] }]);
    expect(engine.decide(ask({ destination: { ip: "2001:db8::42" } })).allow).toBe(true);
    expect(engine.decide(ask({ destination: { ip: "2001:db8::43" } })).allow).toBe(false);
    expect(engine.decide(ask({ destination: { ip: "2001:db9::42" } })).allow).toBe(false);
  });

  it("never applies to the device's own traffic (no principal)", () => {
    expect(engineWith([vendorSsh]).decide(ask({ principal: undefined })).reason).toBe("deny.default");
  });

  it("targets devices by selector", () => {
    const engine = engineWith([{ ...vendorSsh, target: { selector: { matchLabels: { fleet: "meters" } } } }]);
    expect(engine.decide(ask({ device: { id: "dev_9", state: "active", labels: { fleet: "meters" } } })).allow).toBe(true);
    expect(engine.decide(ask({ device: { id: "dev_9", state: "active", labels: { fleet: "cameras" } } })).allow).toBe(false);
  });

  it("is not widened by the device's allow rules: a principal needs a grant", () => {
    const allowAll: PolicyRule = {
      id: "all",
      name: "all",
      selector: {},
      destinations: [{ cidr: "0.0.0.0/0", protocol: "any" }],
      effect: "allow",
    };
    const engine = engineWith([vendorSsh], [allowAll]);
    expect(engine.decide(ask({ destination: { ip: "192.0.2.1" } })).reason).toBe("deny.default");
    expect(engine.decide(ask({ destination: { ip: "192.0.2.1" }, principal: undefined })).reason).toBe("allow.rule");
  });

  it("is overridden by a matching deny rule", () => {
    const noSsh: PolicyRule = {
      id: "no-ssh",
      name: "No SSH",
      selector: {},
      destinations: [{ cidr: "10.0.0.0/8", ports: [22], protocol: "tcp" }],
      effect: "deny",
    };
    expect(engineWith([vendorSsh], [noSsh]).decide(ask())).toMatchObject({ allow: false, reason: "deny.rule", ruleId: "no-ssh" });
  });

  it("names the first active matching grant of the principal", () => {
    const expired = { ...vendorSsh, id: "grt_old", notBefore: "2025-02-01T00:00:00Z", notAfter: "2025-02-02T00:00:00Z" };
    const second = { ...vendorSsh, id: "grt_2", sessionRecording: false };
    expect(engineWith([expired, second, vendorSsh]).decide(ask())).toMatchObject({ grantId: "grt_2", sessionRecording: false });
  });
});
