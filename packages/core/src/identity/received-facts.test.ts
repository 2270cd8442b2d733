/**
 * Facts dated at their receipt (clamped, or stating no time) are remembered apart from the facts that take access away
 * (review 134: sharing `lateFacts`, 32 of them leaving the window pushed out a lifted suspension, whose redelivery then
 * suspended the device again), and for the 32 such facts after the window.
 */
import { describe, expect, it } from "vitest";
import type { Fact } from "./fact.ts";
import { admission, currentState, keyedByContent, remember, timeWindow, type History } from "./fold.ts";
import type { FoldSettings, IdentityState } from "./identity-state.ts";

const settings: FoldSettings = { imeiLock: false, allowedCountries: [] };
const initial: IdentityState = { state: "active", stateAt: "2026-01-01T00:00:00.000Z", sessions: {}, profiles: {} };
const start: History = { checkpoint: initial, facts: [] };
const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString();

/** As apply-fact does: keyed by content, judged, remembered when new or late. */
function deliver(history: History, reported: Fact): { history: History; admitted: string } {
  const fact = keyedByContent(history, reported);
  const admitted = admission(history, fact, settings);
  return { history: admitted === "new" || admitted === "late" ? remember(history, fact, settings) : history, admitted };
}

describe("facts dated at their receipt, and the facts that take access away", () => {
  it("a redelivered suspension, lifted since, stays a duplicate after a skewed source's clamped records pass", () => {
    // An operator source suspends the device, then lifts its own hold.
    const suspension = { type: "device.suspended", key: "src_op|susp-1", at: at(1), data: { reason: "SIM swap" } } as Fact;
    const lift = { type: "device.reinstated", key: "src_op|lift-1", at: at(2), data: { reason: "cleared" } } as Fact;
    let history = deliver(deliver(start, suspension).history, lift).history;
    expect(currentState(history, settings).state).toBe("active");
    // A Data Streamer whose clock runs ahead: every record is clamped to its receipt (`stated` kept). 3 windows of them.
    for (let n = 0; n < 3 * timeWindow; n++) {
      const record = {
        type: "device.roaming-changed",
        key: `src_ds|${1000 + n}`,
        at: at(10 + n),
        stated: at(600 + n),
        data: { roaming: false },
      } as Fact;
      history = deliver(history, record).history;
    }
    expect(history.facts.some((known) => known.key === suspension.key)).toBe(false);
    // The operator redelivers its suspension (same key, same content): a duplicate, as before 6850401.
    const again = deliver(history, suspension);
    expect(currentState(again.history, settings).state).toBe("active");
    expect(again.admitted).toBe("duplicate");
  });

  it("a redelivered suspension, lifted since, stays a duplicate after CAMARA events stating no time pass", () => {
    const suspension = { type: "device.suspended", key: "src_op|susp-2", at: at(1), data: { reason: "SIM swap" } } as Fact;
    const lift = { type: "device.reinstated", key: "src_op|lift-2", at: at(2), data: { reason: "cleared" } } as Fact;
    let history = deliver(deliver(start, suspension).history, lift).history;
    for (let n = 0; n < 3 * timeWindow; n++) {
      const event = {
        type: "device.roaming-changed",
        key: `src_camara|ev-${n}`,
        at: at(10 + n),
        timeChosen: true,
        data: { roaming: n % 2 === 0 },
      } as Fact;
      history = deliver(history, event).history;
    }
    const again = deliver(history, suspension);
    expect(currentState(again.history, settings).state).toBe("active");
    expect(again.admitted).toBe("duplicate");
  });

  it("a clamped create redelivered by a source whose every record is clamped stays a duplicate for the 32 such records after the window", async () => {
    // A streamer whose clock runs ahead: every record clamped to its receipt, its stated time kept.
    const record = (id: number, received: number, type: Fact["type"], data: Record<string, unknown>) =>
      ({ type, key: `src_ds|${id}`, at: at(received), stated: at(received + 600), data }) as Fact;
    const create = record(1, 1, "sim.attached", { bearer: "cellular", ipv4: "10.129.0.7" });
    let history = deliver(start, create).history;
    history = deliver(history, record(2, 2, "sim.detached", {})).history;
    // The create and the detach, then 62: the create left the window 32 facts after it, and 32 such facts left since.
    for (let n = 0; n < 2 * timeWindow - 2; n++)
      history = deliver(history, record(100 + n, 10 + n, "device.roaming-changed", { roaming: false })).history;
    expect(currentState(history, settings).sessions.cellular).toBeUndefined();
    // The create retransmitted (same id, same content), received later, clamped again: a duplicate.
    const again = deliver(history, { ...create, at: at(3000) } as Fact);
    expect(currentState(again.history, settings).sessions.cellular).toBeUndefined();
    expect(again.admitted).toBe("duplicate");
  });
});

const clamped = (id: string, received: number, type: Fact["type"], data: Record<string, unknown>) =>
  ({ type, key: `src_ds|${id}`, at: at(received), stated: at(received + 600), data }) as Fact;

describe("facts dated at their receipt, under a key reused with other content (review 137)", () => {
  it("a clamped attach that left the window, its key since reused by another record, stays a duplicate when redelivered", () => {
    const create = clamped("1", 1, "sim.attached", { bearer: "cellular", ipv4: "10.129.0.7" });
    let history = deliver(start, create).history;
    history = deliver(history, clamped("2", 2, "sim.detached", {})).history;
    for (let n = 0; n < timeWindow; n++)
      history = deliver(history, clamped(`r${n}`, 10 + n, "device.roaming-changed", { roaming: false })).history;
    expect(history.facts.some((f) => f.key === create.key)).toBe(false);
    // The source's record id 1 is reused for another record (sequential ids restart), which the window now holds.
    history = deliver(history, clamped("1", 100, "device.roaming-changed", { roaming: true })).history;
    // The original attach retransmitted, received later, clamped again.
    const again = deliver(history, { ...create, at: at(200) } as Fact);
    expect({ admitted: again.admitted, session: currentState(again.history, settings).sessions.cellular !== undefined }).toEqual({
      admitted: "duplicate",
      session: false,
    });
  });

  it("a clamped attach renamed for a reused key stays a duplicate once both records left the window", () => {
    let history = deliver(start, clamped("1", 1, "device.roaming-changed", { roaming: true })).history;
    const create = clamped("1", 2, "sim.attached", { bearer: "cellular", ipv4: "10.129.0.7" });
    history = deliver(history, create).history; // renamed: src_ds|1#<digest>
    history = deliver(history, clamped("2", 3, "sim.detached", {})).history;
    for (let n = 0; n < timeWindow; n++)
      history = deliver(history, clamped(`r${n}`, 10 + n, "device.roaming-changed", { roaming: false })).history;
    expect(history.facts.some((f) => f.key.startsWith("src_ds|1"))).toBe(false);
    const again = deliver(history, { ...create, at: at(200) } as Fact);
    expect({ admitted: again.admitted, session: currentState(again.history, settings).sessions.cellular !== undefined }).toEqual({
      admitted: "duplicate",
      session: false,
    });
  });
});
