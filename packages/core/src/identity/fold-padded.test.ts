/**
 * eUICC profile ICCIDs are keyed without their F padding (since 2026-12-05), also where a device's state was folded
 * before: its checkpoint and its stored identity keep a profile under the ICCID as reported, with the F (review 63).
 */
import { describe, expect, it } from "vitest";
import type { Fact } from "./fact.ts";
import { admission, currentState, remember, type History } from "./fold.ts";
import type { FoldSettings, IdentityState } from "./identity-state.ts";
import { diffStates } from "./diff.ts";

const settings: FoldSettings = { imeiLock: false, allowedCountries: [] };
const eid = "89049032123451234512345678901235";
const padded = "8944500102198304826F";
const unpadded = "8944500102198304826";
const initial: IdentityState = { state: "active", stateAt: "2026-01-01T00:00:00.000Z", sessions: {}, profiles: {} };
const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString();
let counter = 0;
const fact = (type: Fact["type"], minute: number, data: Record<string, unknown>, seq?: number): Fact =>
  ({ type, data, at: at(minute), key: `padded-${++counter}`, ...(seq !== undefined ? { seq } : {}) }) as Fact;
function deliver(history: History, facts: readonly Fact[]): History {
  let current = history;
  for (const next of facts) if (admission(current, next, settings) === "new") current = remember(current, next, settings);
  return current;
}
/** The profiles that still name the device (apply-fact.ts `profileIccids`: neither failed nor deleted), as aliases are kept. */
const holding = (state: IdentityState) =>
  Object.values(state.profiles).flatMap((profile) =>
    profile.state === "failed" || profile.state === "deleted" ? [] : [profile.iccid.replace(/F$/i, "")],
  );

describe("ICCIDs folded before the F padding was dropped (review 63)", () => {
  it("deletes a profile its checkpoint holds under the padded ICCID (its alias is released)", () => {
    // A device whose enable notification left the 16-fact profile window before 595b703: its checkpoint keys the profile
    // by the ICCID as reported, with the F.
    const history: History = {
      checkpoint: { ...initial, profiles: { [padded]: { iccid: padded, eid, state: "enabled", seqNumber: 2, at: at(2) } } },
      seqCutoff: 2,
      facts: [],
    };
    // The eIM reports the profile deleted, spelled exactly as before.
    const state = currentState(deliver(history, [fact("profile.deleted", 30, { eid, iccid: padded }, 30)]), settings);
    expect(holding(state)).toEqual([]);
  });

  it("keeps of two spellings the one the fold orders last: a sequenced report after an unsequenced one (review 65)", () => {
    const enabled = { type: "profile.enabled", data: { eid, iccid: padded }, at: at(2), key: "eim-5", seq: 5 } as Fact;
    const installed = { type: "profile.installed", data: { eid, iccid: unpadded, result: "success" }, at: at(10), key: "smdp-1" } as Fact;
    const folded = currentState({ checkpoint: initial, facts: [enabled, installed] }, settings);
    expect(folded.profiles[unpadded]?.state).toBe("enabled");
    const legacy: History = {
      checkpoint: {
        ...initial,
        profiles: {
          [unpadded]: { iccid: unpadded, eid, state: "installed", at: at(10) },
          [padded]: { iccid: padded, eid, state: "enabled", seqNumber: 5, at: at(2) },
        },
      },
      seqCutoff: 5,
      facts: [],
    };
    expect(currentState(legacy, settings).profiles[unpadded]?.state).toBe("enabled");
  });

  it("emits no profile event for a profile whose state did not change, only spelled without the F now", () => {
    // The stored identity (written before 595b703) keys the enabled profile with its F; its facts are still in the window.
    const facts = [
      fact("profile.installed", 1, { eid, iccid: padded, result: "success" }, 1),
      fact("profile.enabled", 2, { eid, iccid: padded }, 2),
    ];
    const before: IdentityState = {
      ...initial,
      profiles: { [padded]: { iccid: padded, eid, state: "enabled", seqNumber: 2, at: at(2) } },
    };
    // The next fact, of any kind, folds the history again.
    const after = currentState(
      deliver({ checkpoint: initial, facts }, [fact("device.reachability-changed", 5, { reachable: true })]),
      settings,
    );
    expect(after.profiles[unpadded]?.state).toBe("enabled");
    expect(diffStates(before, after, settings).map((change) => change.type)).toEqual(["device.reachability-changed"]);
  });
});
