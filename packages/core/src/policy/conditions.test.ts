import { describe, expect, it } from "vitest";
import { compilePolicy } from "./compile.ts";
import type { Conditions, DecisionInput } from "./model.ts";

const when = (conditions: Conditions, effect: "allow" | "deny" = "allow") =>
  compilePolicy({
    version: 1,
    rules: [
      { id: "r", name: "r", selector: {}, destinations: [{ fqdn: "api.example.com", protocol: "tcp" }], conditions, effect },
      ...(effect === "deny"
        ? [
            {
              id: "base",
              name: "base",
              selector: {},
              destinations: [{ fqdn: "api.example.com", protocol: "tcp" as const }],
              effect: "allow" as const,
            },
          ]
        : []),
    ],
  });

const ask = (overrides: Partial<DecisionInput>): DecisionInput => ({
  device: { id: "dev_1", state: "active", labels: {} },
  destination: { fqdn: "api.example.com" },
  port: 443,
  protocol: "tcp",
  bearer: "cellular",
  at: Date.parse("2025-03-03T10:00:00Z"),
  ...overrides,
});

const allowedAt = (engine: ReturnType<typeof when>, iso: string) => engine.decide(ask({ at: Date.parse(iso) })).allow;

describe("bearer and country conditions", () => {
  it("allows only on the listed bearers", () => {
    const engine = when({ bearers: ["private-5g", "wifi"] });
    expect(engine.decide(ask({ bearer: "private-5g" })).allow).toBe(true);
    expect(engine.decide(ask({ bearer: "wifi" })).allow).toBe(true);
    expect(engine.decide(ask({ bearer: "cellular" })).allow).toBe(false);
    expect(engine.decide(ask({ bearer: "satellite" })).allow).toBe(false);
  });

  it("allows only in the listed countries, and not when the country is unknown", () => {
    const engine = when({ countries: ["FR", "PT"] });
    expect(engine.decide(ask({ country: "FR" })).allow).toBe(true);
    expect(engine.decide(ask({ country: "DE" })).allow).toBe(false);
    expect(engine.decide(ask({})).allow).toBe(false);
  });

  it("needs every condition of a rule to hold", () => {
    const engine = when({ bearers: ["cellular"], countries: ["FR"] });
    expect(engine.decide(ask({ country: "FR" })).allow).toBe(true);
    expect(engine.decide(ask({ country: "FR", bearer: "wifi" })).allow).toBe(false);
    expect(engine.decide(ask({ country: "DE" })).allow).toBe(false);
  });

  it("applies a conditional deny only while its conditions hold", () => {
    const engine = when({ bearers: ["satellite"] }, "deny");
    expect(engine.decide(ask({ bearer: "satellite" })).reason).toBe("deny.rule");
    expect(engine.decide(ask({ bearer: "cellular" })).reason).toBe("allow.rule");
  });
});

describe("schedule conditions", () => {
  it("allows inside a same-day window and not outside it (end exclusive)", () => {
    const engine = when({ schedule: { timezone: "UTC", windows: [{ days: ["mon"], start: "09:00", end: "17:00" }] } });
    expect(allowedAt(engine, "2025-03-03T09:00:00Z")).toBe(true); // Monday
    expect(allowedAt(engine, "2025-03-03T16:59:59Z")).toBe(true);
    expect(allowedAt(engine, "2025-03-03T17:00:00Z")).toBe(false);
    expect(allowedAt(engine, "2025-03-03T08:59:59Z")).toBe(false);
    expect(allowedAt(engine, "2025-03-04T10:00:00Z")).toBe(false); // Tuesday
  });

  it("runs a window whose end precedes its start past midnight into the next day", () => {
    const engine = when({ schedule: { timezone: "UTC", windows: [{ days: ["fri"], start: "22:00", end: "06:00" }] } });
    expect(allowedAt(engine, "2025-03-07T23:30:00Z")).toBe(true); // Friday night
    expect(allowedAt(engine, "2025-03-08T05:59:00Z")).toBe(true); // Saturday early morning
    expect(allowedAt(engine, "2025-03-08T06:00:00Z")).toBe(false);
    expect(allowedAt(engine, "2025-03-07T05:00:00Z")).toBe(false); // Friday early morning belongs to Thursday's window
    expect(allowedAt(engine, "2025-03-08T23:00:00Z")).toBe(false); // Saturday night
  });

  it("wraps a Sunday night window into Monday morning", () => {
    const engine = when({ schedule: { timezone: "UTC", windows: [{ days: ["sun"], start: "23:00", end: "01:00" }] } });
    expect(allowedAt(engine, "2025-03-09T23:30:00Z")).toBe(true); // Sunday
    expect(allowedAt(engine, "2025-03-10T00:30:00Z")).toBe(true); // Monday
    expect(allowedAt(engine, "2025-03-10T01:30:00Z")).toBe(false);
  });

  it("reads windows in local wall-clock time, following DST", () => {
    // Europe/Paris: UTC+1 in winter, UTC+2 from 2025-03-30 01:00Z, UTC+1 again from 2025-10-26 01:00Z.
    const engine = when({ schedule: { timezone: "Europe/Paris", windows: [{ days: ["mon"], start: "08:00", end: "09:00" }] } });
    expect(allowedAt(engine, "2025-03-24T07:30:00Z")).toBe(true); // winter Monday 08:30 CET
    expect(allowedAt(engine, "2025-03-24T06:30:00Z")).toBe(false);
    expect(allowedAt(engine, "2025-03-31T06:30:00Z")).toBe(true); // summer Monday 08:30 CEST
    expect(allowedAt(engine, "2025-03-31T07:30:00Z")).toBe(false); // 09:30 CEST
  });

  it("never matches the hour skipped by spring-forward, and matches the repeated hour twice", () => {
    const skipped = when({ schedule: { timezone: "Europe/Paris", windows: [{ days: ["sun"], start: "02:00", end: "03:00" }] } });
    // 2025-03-30: 01:59 CET is followed by 03:00 CEST.
    expect(allowedAt(skipped, "2025-03-30T00:59:00Z")).toBe(false);
    expect(allowedAt(skipped, "2025-03-30T01:00:00Z")).toBe(false);
    expect(allowedAt(skipped, "2025-03-23T01:30:00Z")).toBe(true); // the Sunday before: 02:30 CET
    // 2025-10-26: 02:00-03:00 local happens at 00:00-01:00Z (CEST) and again at 01:00-02:00Z (CET).
    expect(allowedAt(skipped, "2025-10-26T00:30:00Z")).toBe(true);
    expect(allowedAt(skipped, "2025-10-26T01:30:00Z")).toBe(true);
    expect(allowedAt(skipped, "2025-10-26T02:30:00Z")).toBe(false);
  });

  it("uses the zone of the schedule, not UTC", () => {
    const engine = when({
      schedule: { timezone: "America/New_York", windows: [{ days: ["mon", "tue", "wed", "thu", "fri"], start: "09:00", end: "17:00" }] },
    });
    expect(allowedAt(engine, "2025-07-07T13:30:00Z")).toBe(true); // Monday 09:30 EDT
    expect(allowedAt(engine, "2025-07-07T12:30:00Z")).toBe(false); // 08:30 EDT
    expect(allowedAt(engine, "2025-07-05T15:00:00Z")).toBe(false); // Saturday
    expect(allowedAt(engine, "2025-07-12T01:00:00Z")).toBe(false); // Friday 21:00 EDT, Saturday in UTC
  });
});
