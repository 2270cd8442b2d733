import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { NormalizedEvent } from "../catalogue/catalogue.ts";
import { actionTime } from "../device/actions.ts";
import { toFact, type Fact } from "../identity/fact.ts";
import { admission, currentState, remember, timeWindow, type History } from "../identity/fold.ts";
import type { FoldSettings, IdentityState } from "../identity/identity-state.ts";
import { boundedEvent, defaultMaxClockSkewSeconds } from "./clock.ts";

const settings: FoldSettings = { imeiLock: true, allowedCountries: [] };
const initial: IdentityState = { state: "active", stateAt: "2026-01-01T00:00:00.000Z", sessions: {}, profiles: {} };
const start = Date.UTC(2026, 0, 1);
const lifecycle = ["device.suspended", "device.quarantined", "device.reinstated"] as const;
const target = { "device.suspended": "suspended", "device.quarantined": "quarantined", "device.reinstated": "active" } as const;

function deliver(history: History, facts: readonly Fact[]): History {
  let current = history;
  for (const fact of facts) if (["new", "late"].includes(admission(current, fact, settings))) current = remember(current, fact, settings);
  return current;
}

/** A sender's clock: on time, behind, ahead within the skew, an hour ahead, or 9999-12-31. */
const skewArb = fc.oneof(
  fc.constant(0),
  fc.integer({ min: -3_600_000, max: 0 }),
  fc.integer({ min: 0, max: defaultMaxClockSkewSeconds * 1000 }),
  fc.constant(3_600_000),
  fc.constant(Date.parse("9999-12-31T23:59:59.000Z") - start),
);
const reportArb = fc.record({ type: fc.constantFrom(...lifecycle), skew: skewArb, gap: fc.integer({ min: 1, max: 60_000 }) });

describe("bounded clocks (property, skewed senders)", () => {
  it("an admin's action decides simroot's hold whatever the senders' clocks said before it; the stricter hold decides the state", () => {
    fc.assert(
      fc.property(fc.array(reportArb, { minLength: 1, maxLength: timeWindow * 2 }), fc.constantFrom(...lifecycle), (reports, action) => {
        let received = start;
        let history: History = { checkpoint: initial, facts: [] };
        reports.forEach((report, index) => {
          received += report.gap;
          const event = {
            type: report.type,
            data: {},
            dedupeKey: `r${index}`,
            occurredAt: new Date(Math.min(received + report.skew, Date.parse("9999-12-31T23:59:59.000Z"))).toISOString(),
            device: { imsi: "208011234567890" },
            sourceType: report.type,
          } as NormalizedEvent;
          history = deliver(history, [toFact(boundedEvent(event, new Date(received)), "src")]);
        });
        const now = new Date(received + 1);
        const taken = { type: action, data: { reason: "operator" }, key: "api|1", at: actionTime(history, now) } as Fact;
        expect(admission(history, taken, settings)).toBe("new");
        // The reports' own hold (their source's: each side lifts only its own), as their clocks ordered them.
        const reported = currentState(history, settings).holds?.sources?.src?.state;
        const after = currentState(deliver(history, [taken]), settings);
        expect(after.holds?.simroot?.state ?? "active").toBe(target[action]);
        // simroot's reinstatement lifts the operator's hold too; its suspension or quarantine leaves it in place.
        const held = action === "device.reinstated" ? ["active"] : [target[action], reported ?? "active"];
        expect(after.state).toBe(held.includes("suspended") ? "suspended" : held.includes("quarantined") ? "quarantined" : "active");
      }),
      { numRuns: 300 },
    );
  });

  it("keeps a time within the skew and clamps one beyond it, saying what the sender stated", () => {
    const received = new Date(start);
    const event = (occurredAt: string) =>
      ({ type: "device.reinstated", data: {}, dedupeKey: "x", occurredAt, device: {}, sourceType: "x" }) as NormalizedEvent;
    const within = new Date(start + 299_000).toISOString();
    expect(boundedEvent(event(within), received)).toEqual(event(within));
    expect(boundedEvent(event("9999-12-31T23:59:59Z"), received)).toMatchObject({
      occurredAt: received.toISOString(),
      reportedAt: "9999-12-31T23:59:59Z",
    });
    expect(boundedEvent(event(within), received, 60)).toMatchObject({ occurredAt: received.toISOString() });
  });

  it("keeps no reportedAt a sender stated itself: only a clamp says what was stated (review 83)", () => {
    const received = new Date(start);
    const event = (occurredAt: string, reportedAt?: string) =>
      ({
        type: "device.reinstated",
        data: {},
        dedupeKey: "x",
        occurredAt,
        device: {},
        sourceType: "x",
        ...(reportedAt === undefined ? {} : { reportedAt }),
      }) as NormalizedEvent;
    // Kept, it was answered as `clampedFrom` and audited as `reportedAt` beside a `clampedTo`, though nothing was clamped.
    const onTime = new Date(start - 1_000).toISOString();
    expect(boundedEvent(event(onTime, "not a time, in 64 characters or fewer"), received)).toEqual(event(onTime));
    expect(boundedEvent(event("9999-12-31T23:59:59Z", "2026-01-01T00:00:00Z"), received)).toEqual(
      event(received.toISOString(), "9999-12-31T23:59:59Z"),
    );
  });
});
