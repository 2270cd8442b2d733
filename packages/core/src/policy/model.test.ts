import { describe, expect, it } from "vitest";
import * as z from "zod";
import { decisionInputSchema, destinationSchema, grantSchema, policySetSchema, scheduleSchema } from "./model.ts";

const messages = (schema: z.ZodType, value: unknown) => {
  const result = schema.safeParse(value);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
};

describe("policy schemas", () => {
  it("needs exactly one of fqdn and cidr in a destination", () => {
    expect(messages(destinationSchema, { fqdn: "a.example.com", protocol: "tcp" })).toEqual([]);
    expect(messages(destinationSchema, { cidr: "2001:db8::/32", protocol: "udp" })).toEqual([]);
    expect(messages(destinationSchema, { protocol: "tcp" })[0]).toMatch(/exactly one/);
    expect(messages(destinationSchema, { fqdn: "a.example.com", cidr: "10.0.0.0/8", protocol: "tcp" })[0]).toMatch(/exactly one/);
  });

  it("accepts only leading wildcards and valid host names", () => {
    for (const fqdn of ["*.example.com", "API.example.com.", "_mqtt._tcp.example.com", "localhost"]) {
      expect(messages(destinationSchema, { fqdn, protocol: "tcp" }), fqdn).toEqual([]);
    }
    for (const fqdn of ["a.*.example.com", "*example.com", "*", "-a.example.com", "a..example.com", "https://example.com"]) {
      expect(messages(destinationSchema, { fqdn, protocol: "tcp" }).length, fqdn).toBeGreaterThan(0);
    }
  });

  it("validates ports and ranges", () => {
    expect(messages(destinationSchema, { fqdn: "a.b", ports: [1, { from: 10, to: 20 }], protocol: "tcp" })).toEqual([]);
    expect(messages(destinationSchema, { fqdn: "a.b", ports: [{ from: 20, to: 10 }], protocol: "tcp" }).length).toBe(1);
    expect(messages(destinationSchema, { fqdn: "a.b", ports: [65536], protocol: "tcp" }).length).toBe(1);
    expect(messages(destinationSchema, { fqdn: "a.b", ports: [], protocol: "tcp" }).length).toBe(1);
  });

  it("validates schedule zones and clock times", () => {
    const window = { days: ["mon"], start: "22:00", end: "06:00" };
    expect(messages(scheduleSchema, { timezone: "Europe/Paris", windows: [window] })).toEqual([]);
    expect(messages(scheduleSchema, { timezone: "Mars/Olympus", windows: [window] })[0]).toMatch(/time zone/);
    expect(messages(scheduleSchema, { timezone: "UTC", windows: [{ ...window, start: "24:00" }] }).length).toBe(1);
    expect(messages(scheduleSchema, { timezone: "UTC", windows: [{ ...window, end: "22:00" }] })[0]).toMatch(/differ/);
    expect(messages(scheduleSchema, { timezone: "UTC", windows: [{ ...window, days: ["mon", "mon"] }] }).length).toBe(1);
  });

  it("needs a grant's window to be non-empty and its instants ISO", () => {
    const grant = {
      id: "g",
      principal: "p",
      target: { deviceId: "dev_1" },
      destinations: [{ fqdn: "a.b", protocol: "tcp" }],
      notBefore: "2025-01-01T00:00:00Z",
      notAfter: "2025-01-02T00:00:00+01:00",
      sessionRecording: false,
    };
    expect(messages(grantSchema, grant)).toEqual([]);
    expect(messages(grantSchema, { ...grant, notAfter: grant.notBefore })[0]).toMatch(/precede/);
    expect(messages(grantSchema, { ...grant, notBefore: "yesterday" }).length).toBeGreaterThan(0);
    expect(messages(grantSchema, { ...grant, target: { deviceId: "d", selector: {} } }).length).toBeGreaterThan(0);
  });

  it("defaults a policy set and rejects duplicate ids", () => {
    expect(policySetSchema.parse({ version: 3 })).toEqual({
      version: 3,
      rules: [],
      grants: [],
      settings: { quarantineDestinations: [], failMode: "closed" },
    });
    const rule = { id: "r", name: "r", selector: {}, destinations: [{ fqdn: "a.b", protocol: "tcp" }], effect: "allow" };
    expect(messages(policySetSchema, { version: 1, rules: [rule, rule] })[0]).toMatch(/distinct/);
  });

  it("validates decision inputs", () => {
    const input = {
      device: { id: "d", state: "active", labels: {} },
      destination: { ip: "2001:db8::1" },
      port: 443,
      protocol: "tcp",
      bearer: "satellite",
      at: 0,
    };
    expect(messages(decisionInputSchema, input)).toEqual([]);
    expect(messages(decisionInputSchema, { ...input, destination: {} }).length).toBe(1);
    expect(messages(decisionInputSchema, { ...input, destination: { ip: "300.1.1.1" } }).length).toBe(1);
    expect(messages(decisionInputSchema, { ...input, country: "fr" }).length).toBe(1);
    expect(messages(decisionInputSchema, { ...input, protocol: "any" }).length).toBe(1);
  });

  it("exports JSON Schema with ids for the API docs", () => {
    const schema = z.toJSONSchema(policySetSchema, { io: "input" }) as { $defs?: Record<string, unknown> };
    expect(Object.keys(schema.$defs ?? {})).toEqual(expect.arrayContaining(["PolicyRule", "Grant", "Destination", "LabelSelector"]));
  });
});
