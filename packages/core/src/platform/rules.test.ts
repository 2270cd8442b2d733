import { describe, expect, it } from "vitest";
import { matchesPattern } from "../event/pattern.ts";
import type { DomainEvent } from "../event/event.ts";
import { routedAlone } from "../ingest/reported.ts";
import { functions } from "./functions.ts";
import { applierQueue } from "./limits.ts";
import { deployedPattern, eventSource, ingestSource, isQueued, retryPolicy, rules, type RuleName } from "./rules.ts";

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

describe("reported facts that travel alone", () => {
  it("are exactly those a rule besides the applier's matches on the ingest source (core ingest/reported.ts)", () => {
    const onIngest = (Object.keys(rules) as RuleName[]).filter((name) =>
      ((rules[name].pattern as { source?: readonly string[] }).source ?? []).includes(ingestSource),
    );
    expect(onIngest.sort()).toEqual(["operatorEvents", "profileSwitches"]);
    const fact = (type: string, cause?: string) =>
      ({
        id: "evt_1",
        type,
        tenantId: "ten_a",
        subject: "eid:1",
        time: "2026-12-02T00:00:00Z",
        actor: "source:src_1",
        requestId: "r",
        origin: "ingest",
        data: { sourceId: "src_1", format: "simroot", event: { type, data: cause === undefined ? {} : { cause } } },
      }) as DomainEvent;
    const samples = ["profile.enabled", "profile.disabled", "sim.attached"].flatMap((type) =>
      [undefined, "deviceChange", "fallback", "userRequest", "other"].map((cause) => fact(type, cause)),
    );
    for (const sample of samples) {
      const envelope = { source: ingestSource, "detail-type": sample.type, resources: [], detail: sample };
      expect(routedAlone(sample), `${sample.type} ${JSON.stringify(sample.data)}`).toBe(
        matchesPattern(rules.profileSwitches.pattern, envelope),
      );
    }
    expect(samples.filter(routedAlone)).toHaveLength(2);
  });
});

describe("the applier's queue", () => {
  it("is the target of the rule every reported fact matches, with settings AWS accepts", () => {
    const queued = (Object.keys(rules) as RuleName[]).filter(isQueued);
    expect(queued).toEqual(["operatorEvents"]);
    expect(rules.operatorEvents.pattern).toEqual({ source: [ingestSource] });
    // Lambda refuses a mapping whose queue hides a message for less than the function's timeout.
    expect(applierQueue.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(functions.operatorEvents.timeoutSeconds);
    // More than 10 messages a batch needs a batching window, which would delay every fact.
    expect(applierQueue.batchSize).toBeLessThanOrEqual(10);
    expect(applierQueue.maximumConcurrency).toBeGreaterThanOrEqual(2);
    expect(applierQueue.maximumConcurrency).toBeLessThanOrEqual(1000);
    // A throttled or timed-out receive counts: at least 5 (AWS), and never fewer than the local bus's attempts.
    expect(applierQueue.maxReceiveCount).toBeGreaterThanOrEqual(5);
    expect(applierQueue.maxReceiveCount).toBeGreaterThanOrEqual(retryPolicy.handlerAttempts);
  });
});
