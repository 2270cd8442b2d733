import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Fact } from "./fact.ts";
import { admission, currentState, keyedByContent, profileWindow, remember, timeWindow, type History } from "./fold.ts";
import type { FoldSettings, IdentityState } from "./identity-state.ts";
import { bindingsOf, diffStates } from "./diff.ts";

const settings: FoldSettings = { imeiLock: true, allowedCountries: ["FR", "DE"] };
const eid = "89049032123451234512345678901235";
const initial: IdentityState = {
  state: "active",
  stateAt: "2026-01-01T00:00:00.000Z",
  imei: "490154203237518",
  sessions: {},
  profiles: {},
};
const start: History = { checkpoint: initial, facts: [] };

let counter = 0;
const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
const fact = (type: Fact["type"], minute: number, data: Record<string, unknown>, seq?: number): Fact =>
  ({ type, data, at: at(minute), key: `k${++counter}`, ...(seq !== undefined ? { seq } : {}) }) as Fact;

function deliver(history: History, facts: readonly Fact[]): History {
  let current = history;
  for (const next of facts) if (admission(current, next, settings) === "new") current = remember(current, next, settings);
  return current;
}
const stateAfter = (facts: readonly Fact[]) => currentState(deliver(start, facts), settings);

describe("the identity fold", () => {
  it("opens a session on attach, moves it on a bearer switch and closes it on detach", () => {
    const attached = fact("sim.attached", 1, {
      bearer: "cellular",
      rat: "NR",
      plmn: { mcc: "208", mnc: "01" },
      apn: "iot",
      ipv4: "10.0.0.7",
    });
    const switched = fact("bearer.switched", 2, { bearer: "wifi", rat: "WLAN", ipv4: "10.1.0.9" });
    expect(stateAfter([attached]).sessions.cellular).toMatchObject({ bearer: "cellular", country: "FR", ipv4: "10.0.0.7" });
    const afterSwitch = stateAfter([attached, switched]);
    expect(Object.keys(afterSwitch.sessions)).toEqual(["wifi"]);
    expect([...bindingsOf(afterSwitch).keys()]).toEqual(["10.1.0.9"]);
    expect(stateAfter([attached, switched, fact("sim.detached", 3, {})]).sessions).toEqual({});
  });

  it("reports a switch as bearer.switched and a roaming change outside the allowed countries as not allowed", () => {
    const before = stateAfter([fact("sim.attached", 1, { bearer: "cellular", ipv4: "10.0.0.7" })]);
    const after = currentState(
      deliver(start, [
        fact("sim.attached", 1, { bearer: "cellular", ipv4: "10.0.0.7" }),
        fact("bearer.switched", 2, { bearer: "satellite", rat: "NR_LEO" }),
        fact("device.roaming-changed", 3, { roaming: true, mcc: "310" }),
      ]),
      settings,
    );
    const changes = diffStates(before, after, settings);
    expect(changes.map((change) => change.type)).toEqual(["bearer.switched", "device.roaming-changed"]);
    expect(changes[0]!.data).toMatchObject({ bearer: "satellite", from: "cellular" });
    expect(changes[1]!.data).toMatchObject({ roaming: true, country: "US", allowed: false });
  });

  it("quarantines a device whose IMEI changes when the binding is locked, and not otherwise", () => {
    const moved = fact("device.equipment-changed", 1, { imei: "356938035643809" });
    expect(stateAfter([moved])).toMatchObject({ state: "quarantined", imei: "356938035643809" });
    expect(currentState(deliver(start, [moved]), settings).stateReason).toContain("IMEI changed");
    const unlocked = currentState(remember(start, moved, { ...settings, imeiLock: false }), { ...settings, imeiLock: false });
    expect(unlocked).toMatchObject({ state: "active", imei: "356938035643809" });
  });

  it("quarantines a locked device on an IMEI association change that names no IMEI, and learns the IMEI reported next", () => {
    const changed = fact("device.equipment-changed", 1, { association: "IMEI" });
    const state = stateAfter([changed]);
    expect(state).toMatchObject({ state: "quarantined" });
    expect(state.imei).toBeUndefined();
    expect(state.stateReason).toContain("IMEI association changed");
    // An admin's reinstatement (an action through simroot: its key begins `api|`) lifts the IMEI lock's quarantine.
    const later = stateAfter([
      changed,
      { ...fact("device.reinstated", 2, {}), key: "api|evt_reinstate" },
      fact("sim.attached", 3, { bearer: "cellular", imei: "356938035643809" }),
    ]);
    expect(later).toMatchObject({ state: "active", imei: "356938035643809" });
    const unlocked = currentState(remember(start, changed, { ...settings, imeiLock: false }), { ...settings, imeiLock: false });
    expect(unlocked.state).toBe("active");
  });

  it("reads holds folded before they were kept apart: a bare hold is simroot's, one kept as the operator's any source lifts (review 102)", () => {
    // A checkpoint folded before holds were kept: suspended, with no holds. An operator's report does not lift it.
    const bare: History = { checkpoint: { ...initial, state: "suspended", stateReason: "stolen" }, facts: [] };
    const report = { ...fact("device.reinstated", 5, {}), key: "src_camara|r-1" } as Fact;
    expect(currentState(remember(bare, report, settings), settings)).toMatchObject({ state: "suspended", stateReason: "stolen" });
    // One kept as the operator's, before holds were kept per source: any source's report lifts it, as any did then.
    const operator: History = {
      checkpoint: { ...initial, state: "suspended", stateReason: "swap", holds: { operator: { state: "suspended", at: at(1) } } },
      facts: [],
    };
    expect(currentState(remember(operator, report, settings), settings).state).toBe("active");
  });

  it("lifts with simroot's reinstatement only the holds of facts admitted before it, whatever they are dated (review 95)", () => {
    const reinstate = { ...fact("device.reinstated", 10, { reason: "cleared" }), key: "api|evt_reinstate" } as Fact;
    const suspension = { ...fact("device.suspended", 5, { reason: "SIM swap" }), key: "src_camara|swap-1" } as Fact;
    const otherImei = fact("sim.attached", 6, { bearer: "cellular", imei: "356938035643809" });
    // Known to the reinstatement (admitted before it): lifted.
    expect(stateAfter([suspension, otherImei, reinstate])).toMatchObject({ state: "active", imei: "356938035643809" });
    // Reported after it, though dated before: each holds the device, with its own reason, the others' lifts aside.
    expect(stateAfter([reinstate, suspension]).state).toBe("suspended");
    expect(stateAfter([reinstate, otherImei])).toMatchObject({
      state: "quarantined",
      stateReason: "IMEI changed from 490154203237518 to 356938035643809",
    });
    // An admin's quarantine dated after such a hold, known to the reinstatement: lifted, and the hold it replaced stands.
    const quarantine = { ...fact("device.quarantined", 8, { reason: "admin" }), key: "api|evt_quarantine" } as Fact;
    expect(stateAfter([quarantine, reinstate, otherImei])).toMatchObject({
      state: "quarantined",
      stateReason: expect.stringContaining("IMEI changed"),
    });
    // A later reinstatement, admitted after the report, lifts it; so it does once both have left the window.
    const again = { ...fact("device.reinstated", 20, { reason: "checked" }), key: "api|evt_again" } as Fact;
    expect(stateAfter([reinstate, otherImei, again]).state).toBe("active");
    const after = Array.from({ length: timeWindow + 2 }, (_, n) => fact("device.roaming-changed", 30 + n, { roaming: false }));
    const history = deliver(start, [reinstate, otherImei, ...after]);
    expect(history.facts.some((known) => known.key === reinstate.key)).toBe(false);
    expect(currentState(history, settings).state).toBe("quarantined");
  });

  it("spares the holds a reinstatement did not know of through the checkpoint, a chain of them, and lifts known equipment (review 96)", () => {
    // As apply-fact admits: late facts too.
    const admit = (history: History, facts: readonly Fact[]) =>
      facts.reduce(
        (current, next) => (["new", "late"].includes(admission(current, next, settings)) ? remember(current, next, settings) : current),
        history,
      );
    const admin = (type: Fact["type"], minute: number, name: string) =>
      ({ ...fact(type, minute, { reason: name }), key: `api|${name}` }) as Fact;
    // A source's suspension dated before the window, reported after an admin's reinstatement: late, and it holds.
    const filler = Array.from({ length: timeWindow + 1 }, (_, n) => fact("device.roaming-changed", 10 + n, { roaming: false }));
    const behindWindow = admit(start, [...filler, admin("device.reinstated", 100, "r")]);
    const swap = { ...fact("device.suspended", 5, { reason: "SIM swap" }), key: "src_camara|swap-1" } as Fact;
    expect(admission(behindWindow, swap, settings)).toBe("late");
    expect(currentState(admit(behindWindow, [swap]), settings).state).toBe("suspended");
    // Two reinstatements, equipment changes between and before them: the earliest, reported last, holds.
    const r1 = admin("device.reinstated", 20, "r1");
    const r2 = admin("device.reinstated", 30, "r2");
    const [first, second, earliest] = ["356938035643809", "353918057227434", "358240051111110"].map((imei, n) =>
      fact("device.equipment-changed", [15, 25, 5][n]!, { imei }),
    );
    expect(currentState(admit(start, [r1, first!, second!, r2]), settings).state).toBe("active");
    expect(currentState(admit(start, [r1, first!, second!, r2, earliest!]), settings).state).toBe("quarantined");
    // The equipment the admin reinstated the device in, reported again late by another source: it stays active.
    const changed = { ...fact("device.equipment-changed", 5, { imei: "356938035643809" }), key: "src_nef|eq-1" } as Fact;
    const attach = { ...fact("sim.attached", 4, { bearer: "cellular", imei: "356938035643809" }), key: "src_camara|att-1" } as Fact;
    const reinstate = admin("device.reinstated", 10, "r3");
    expect(currentState(admit(start, [changed, reinstate, attach]), settings).state).toBe("active");
    // A hold that left the window in order, delivered again, is a duplicate: not imposed again.
    const suspended = { ...fact("device.suspended", 1, { reason: "swap" }), key: "src_camara|s1" } as Fact;
    const lifted = { ...fact("device.reinstated", 2, {}), key: "src_camara|r1" } as Fact;
    const passed = admit(start, [suspended, lifted, ...filler]);
    expect(currentState(passed, settings).state).toBe("active");
    expect(admission(passed, suspended, settings)).toBe("duplicate");
  });

  it("knows a fact that left the window by its content too: another under its key is a fact of its own (review 99)", () => {
    const admit = (history: History, facts: readonly Fact[]) =>
      facts.reduce((current, reported) => {
        const next = keyedByContent(current, reported);
        return ["new", "late"].includes(admission(current, next, settings)) ? remember(current, next, settings) : current;
      }, history);
    const source = (type: Fact["type"], minute: number, data: Record<string, unknown>, key: string) =>
      ({ ...fact(type, minute, data), key }) as Fact;
    const suspended = source("device.suspended", 1, { reason: "claimed" }, "src_ds|rec-1001");
    const lifted = source("device.reinstated", 2, {}, "src_ds|rec-1002");
    const filler = Array.from({ length: timeWindow + 1 }, (_, n) => fact("device.roaming-changed", 10 + n, { roaming: false }));
    const passed = admit(start, [suspended, lifted, ...filler]);
    expect(admission(passed, keyedByContent(passed, suspended), settings)).toBe("duplicate");
    const revoked = source("device.revoked", 100, { reason: "SIM deletion" }, "src_ds|rec-1001");
    const after = admit(passed, [revoked]);
    expect(currentState(after, settings).state).toBe("revoked");
    // That one too, once it has left the window under the key it was given, is known when delivered again.
    const later = admit(
      after,
      Array.from({ length: timeWindow + 1 }, (_, n) => fact("device.roaming-changed", 200 + n, { roaming: true })),
    );
    expect(admission(later, keyedByContent(later, revoked), settings)).toBe("duplicate");
  });

  it("forgets the reinstatements that left the window from the holds they spared (review 99)", () => {
    let history = start;
    const imeis = ["356938035643809", "353918057227434"];
    for (let n = 0; n < 60; n++) {
      history = remember(history, { ...fact("device.reinstated", 10 * n + 5, { reason: "auto" }), key: `api|r${n}` } as Fact, settings);
      const flip = fact("device.equipment-changed", 10 * n + 3, { imei: imeis[n % 2] });
      if (admission(history, flip, settings) !== "stale") history = remember(history, flip, settings);
    }
    const state = currentState(history, settings);
    expect(state.state).toBe("quarantined");
    const kept = [...(state.holds?.simroot?.spares ?? []), ...(state.holds?.simroot?.behind?.spares ?? [])];
    expect(kept.length).toBeLessThanOrEqual(timeWindow);
  });

  it("keeps a revoked device revoked whatever arrives later or out of order", () => {
    const revoke = fact("device.revoked", 5, { reason: "stolen" });
    const lateAttach = fact("sim.attached", 9, { bearer: "cellular", ipv4: "10.0.0.8" });
    const reinstate = fact("device.reinstated", 10, {});
    const earlierAttach = fact("sim.attached", 1, { bearer: "cellular", ipv4: "10.0.0.7" });
    for (const order of [
      [revoke, lateAttach, reinstate, earlierAttach],
      [earlierAttach, reinstate, lateAttach, revoke],
    ]) {
      const state = stateAfter(order);
      expect(state.state).toBe("revoked");
      expect(state.sessions).toEqual({});
      expect(bindingsOf(state).size).toBe(0);
    }
  });

  it("follows the SGP.32 profile state machine: one enabled profile per eUICC, ordered by seqNumber", () => {
    const a = "8944500102198304826";
    const b = "8944500102198304834";
    const facts = [
      fact("profile.installed", 1, { eid, iccid: a, result: "success" }, 1),
      fact("profile.enabled", 2, { eid, iccid: a }, 2),
      fact("profile.installed", 3, { eid, iccid: b, result: "success" }, 3),
      fact("profile.enabled", 4, { eid, iccid: b }, 4),
    ];
    const state = stateAfter(facts);
    expect(state.profiles[a]?.state).toBe("disabled");
    expect(state.profiles[b]?.state).toBe("enabled");
    // The same notifications arriving backwards fold to the same profiles.
    expect(stateAfter([...facts].reverse()).profiles).toEqual(state.profiles);
  });

  it("recognizes a repeated fact as a duplicate and one older than the window as stale", () => {
    const attach = fact("sim.attached", 1, { bearer: "cellular" });
    const history = deliver(start, [attach]);
    expect(admission(history, attach, settings)).toBe("duplicate");
    const long = Array.from({ length: 40 }, (_, minute) =>
      fact("device.reachability-changed", 100 + minute, { reachable: minute % 2 === 0 }),
    );
    const full = deliver(start, long);
    expect(full.facts.length).toBe(32);
    expect(admission(full, fact("sim.attached", 50, { bearer: "wifi" }), settings)).toBe("stale");
    expect(admission(full, fact("sim.attached", 200, { bearer: "wifi" }), settings)).toBe("new");
  });
});

// ---- convergence: any interleaving, duplication and reordering folds like in-order delivery ----

const bearerArb = fc.constantFrom("cellular", "private-5g", "wifi", "satellite");
const ipArb = fc.constantFrom("10.0.0.1", "10.0.0.2", "10.0.0.3");
const imeiArb = fc.constantFrom("490154203237518", "356938035643809", "353918057227434");
const iccidArb = fc.constantFrom("8944500102198304826", "8944500102198304834", "8944500102198304842");

const timeFactArb = fc.oneof(
  fc.record({
    type: fc.constant("sim.attached" as const),
    data: fc.record({ bearer: bearerArb, ipv4: ipArb }, { requiredKeys: ["bearer"] }),
  }),
  fc.record({ type: fc.constant("sim.detached" as const), data: fc.record({ bearer: bearerArb }, { requiredKeys: [] }) }),
  fc.record({
    type: fc.constant("bearer.switched" as const),
    data: fc.record({ bearer: bearerArb, ipv4: ipArb }, { requiredKeys: ["bearer"] }),
  }),
  fc.record({
    type: fc.constant("device.roaming-changed" as const),
    data: fc.record({ roaming: fc.boolean(), mcc: fc.constantFrom("208", "262", "310") }),
  }),
  fc.record({ type: fc.constant("device.equipment-changed" as const), data: fc.record({ imei: imeiArb }) }),
  fc.record({
    type: fc.constantFrom(
      "device.suspended" as const,
      "device.quarantined" as const,
      "device.reinstated" as const,
      "device.revoked" as const,
    ),
    data: fc.constant({}),
  }),
);
const profileFactArb = fc.record({
  type: fc.constantFrom("profile.installed" as const, "profile.enabled" as const, "profile.disabled" as const, "profile.deleted" as const),
  iccid: iccidArb,
  failed: fc.boolean(),
});

const historyArb = fc
  .tuple(fc.array(timeFactArb, { maxLength: 30 }), fc.array(profileFactArb, { maxLength: 15 }))
  .map(([timeFacts, profileFacts]) => [
    ...timeFacts.map((spec, index) => ({ ...spec, at: at(index), key: `t${index}` }) as Fact),
    ...profileFacts.map(
      (spec, index) =>
        ({
          type: spec.type,
          data: { eid, iccid: spec.iccid, ...(spec.type === "profile.installed" ? { result: spec.failed ? "failure" : "success" } : {}) },
          at: at(100 + index),
          key: `p${index}`,
          seq: index + 1,
        }) as Fact,
    ),
  ]);

describe("convergence (property)", () => {
  it("folds any shuffled, duplicated delivery of a history to the in-order state", () => {
    fc.assert(
      fc.property(
        historyArb.chain((facts) =>
          fc.tuple(
            fc.constant(facts),
            fc
              .shuffledSubarray([...facts, ...facts], { minLength: 0 })
              .chain((extra) => fc.shuffledSubarray([...facts, ...extra], { minLength: facts.length + extra.length })),
          ),
        ),
        ([inOrder, delivered]) => {
          const expected = stateAfter(inOrder);
          const actual = stateAfter(delivered);
          expect(actual).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});

// ---- beyond the windows: more facts than the history holds reach the checkpoint ----

const unsequencedInstallArb = fc.record({
  type: fc.constant("profile.installed" as const),
  iccid: iccidArb,
  failed: fc.boolean(),
  unsequenced: fc.constant(true),
});
const longHistoryArb = fc
  .tuple(
    fc.array(timeFactArb, { minLength: timeWindow + 1, maxLength: timeWindow * 2 }),
    fc.array(fc.oneof(profileFactArb, unsequencedInstallArb), { minLength: profileWindow + 1, maxLength: profileWindow * 3 }),
  )
  .map(([timeFacts, profileFacts]) => [
    ...timeFacts.map((spec, index) => ({ ...spec, at: at(index), key: `t${index}` }) as Fact),
    ...profileFacts.map(
      (spec, index) =>
        ({
          type: spec.type,
          data: { eid, iccid: spec.iccid, ...(spec.type === "profile.installed" ? { result: spec.failed ? "failure" : "success" } : {}) },
          at: at(100 + index),
          key: `p${index}`,
          ...("unsequenced" in spec ? {} : { seq: index + 1 }),
        }) as Fact,
    ),
  ]);

describe("exactly once beyond the windows (property)", () => {
  it("generates histories longer than both windows, so facts reach the checkpoint", () => {
    fc.assert(
      fc.property(longHistoryArb, (facts) => {
        const history = deliver(start, facts);
        expect(history.timeCutoff).toBeDefined();
        expect(history.facts.filter((known) => known.type.startsWith("profile.")).length).toBe(profileWindow);
      }),
      { numRuns: 50 },
    );
  });

  it("never changes the state when any delivered fact is redelivered, however long ago it left the window", () => {
    fc.assert(
      fc.property(
        longHistoryArb.chain((facts) => fc.tuple(fc.constant(facts), fc.shuffledSubarray(facts, { minLength: 1 }))),
        ([facts, redelivered]) => {
          const history = deliver(start, facts);
          for (const again of redelivered) expect(admission(history, again, settings), again.key).not.toBe("new");
          expect(currentState(deliver(history, redelivered), settings)).toEqual(currentState(history, settings));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("keeps a deleted profile deleted when the SM-DP+ install report is redelivered after it left the window", () => {
    const iccid = "8944500102198304826";
    const installed = fact("profile.installed", 1, { eid, iccid, result: "success" });
    const sequenced = Array.from({ length: profileWindow }, (_, index) =>
      fact(
        index === profileWindow - 1 ? "profile.deleted" : index % 2 === 0 ? "profile.enabled" : "profile.disabled",
        2 + index,
        { eid, iccid },
        index + 1,
      ),
    );
    const history = deliver(start, [installed, ...sequenced]);
    expect(currentState(history, settings).profiles[iccid]?.state).toBe("deleted");
    expect(admission(history, installed, settings)).toBe("stale");
    expect(currentState(deliver(history, [installed]), settings).profiles[iccid]?.state).toBe("deleted");
  });
});
