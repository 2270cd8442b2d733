import { describe, expect, it } from "vitest";
import { matchesPattern } from "../event/pattern.ts";
import { deployedPattern, eventSource, rules, type RuleName } from "./rules.ts";

const envelopeOf = (tenantId: string, type = "device.suspended", resources: string[] = []) =>
  ({
    version: "0",
    id: "e1",
    "detail-type": type,
    source: eventSource,
    account: "000000000000",
    time: "2026-12-02T00:00:00Z",
    region: "local",
    resources,
    detail: { id: "evt_1", type, tenantId, subject: "dev_1", time: "2026-12-02T00:00:00Z", actor: "key:k", requestId: "r", data: {} },
  }) as never;

const invoked = (tenants: Parameters<typeof deployedPattern>[1], tenantId: string, resources: string[] = []) =>
  (Object.keys(rules) as RuleName[])
    .filter((name) => matchesPattern(deployedPattern(name, tenants), envelopeOf(tenantId, "device.suspended", resources)))
    .sort();

describe("the rules as deployed", () => {
  it("invoke no integration's consumer while it is off, and no opt-in consumer the outbox did not name", () => {
    expect(invoked({}, "ten_a")).toEqual(["detectors"]);
    expect(invoked({}, "ten_a", ["simroot:consumer/webhooks"])).toEqual(["detectors", "webhooks"]);
    expect(invoked({}, "ten_a", ["simroot:consumer/webhooks", "simroot:consumer/automation"])).toEqual([
      "automation",
      "detectors",
      "webhooks",
    ]);
  });

  it("invoke an integration's consumer for its tenant's events only", () => {
    const tenants = { siemExport: "ten_a", iotSync: "ten_a", postureSync: "ten_b" };
    expect(invoked(tenants, "ten_a")).toEqual(["detectors", "iotSync", "siemExport"]);
    expect(invoked(tenants, "ten_b")).toEqual(["detectors", "postureSync"]);
    expect(invoked(tenants, "ten_c")).toEqual(["detectors"]);
  });

  it("keep every other condition of an integration's pattern (its event types)", () => {
    const tenants = { iotSync: "ten_a" };
    expect(matchesPattern(deployedPattern("iotSync", tenants), envelopeOf("ten_a", "sim.attached"))).toBe(false);
    expect(deployedPattern("operatorEvents", tenants)).toBe(rules.operatorEvents.pattern);
  });
});
