import { decodeTime, isValid } from "ulid";
import { describe, expect, it } from "vitest";
import { hasIdKind, idFromSeed, newId } from "./id.ts";

/** The ULID part of an id, checked by the ULID reference implementation (a devDependency: the bundles carry ours). */
const ulidOf = (id: string) => id.slice(id.indexOf("_") + 1);

describe("ids", () => {
  it("are ULIDs of the time they are made, as the reference implementation reads them", () => {
    // Ahead of any id made before in this process (a later id never goes back: see below).
    const time = Date.now() + 3_600_000 + Math.floor(Math.random() * 1_000);
    const id = newId("device", time);
    expect(hasIdKind("device", id)).toBe(true);
    expect(isValid(ulidOf(id))).toBe(true);
    expect(decodeTime(ulidOf(id))).toBe(time);
  });

  it("sort in the order they were made, within one millisecond and when the clock steps back", () => {
    const time = Date.now() + 7_200_000;
    const ids = [newId("event", time), newId("event", time), newId("event", time - 5_000), newId("event", time + 1)];
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // Within the millisecond (or behind it), an id keeps the newest time seen and counts its randomness up.
    expect(ids.slice(0, 3).map((id) => decodeTime(ulidOf(id)))).toEqual([time, time, time]);
    expect(decodeTime(ulidOf(ids[3]!))).toBe(time + 1);
  });

  it("makes the same id of the same seed at the same time, a valid ULID of that time (an action taken once per cause)", () => {
    const time = Date.UTC(2026, 11, 5, 14, 0);
    const id = idFromSeed("grant", time, "rul_1|evt_1|{}");
    expect(idFromSeed("grant", time, "rul_1|evt_1|{}")).toBe(id);
    expect(idFromSeed("grant", time, "rul_1|evt_2|{}")).not.toBe(id);
    expect(hasIdKind("grant", id)).toBe(true);
    expect(isValid(id.slice(4))).toBe(true);
    expect(decodeTime(id.slice(4))).toBe(time);
  });
});
