import { describe, expect, it } from "vitest";
import { cutEntries, cutMismatch, leftOut, storeValued, supersededBy } from "./cut.ts";

const change = (kind: string, key: string, value: Record<string, unknown> | null, rev?: number) => ({
  kind,
  key,
  value,
  ...(rev === undefined ? {} : { rev }),
});

describe("a cut's entries", () => {
  // Shard 0: device a twice, then address x. Shard 2: address x taken by device b.
  const perShard = [
    [
      { seq: 4, feed: [change("device", "a", { state: "active" })] },
      { seq: 5, feed: [change("device", "a", { state: "revoked" }), change("binding", "10.0.0.1", { deviceId: "a" })] },
    ],
    [],
    [{ seq: 9, feed: [change("binding", "10.0.0.1", { deviceId: "b" })] }],
  ];
  const derived = cutEntries(perShard);

  it("keeps one entry per key, its last change, placed by the last shard that wrote it", () => {
    expect(derived.map(({ entry }) => [entry.kind, entry.key, entry.shard, entry.seq])).toEqual([
      ["device", "a", 0, 5],
      ["binding", "10.0.0.1", 2, 9],
    ]);
    expect(derived[0]!.entry.value).toEqual({ state: "revoked" });
    // Written on two shards: its value is the store's when sequenced, not its record's.
    expect(derived.map(storeValued)).toEqual([false, true]);
  });

  it("accepts what the sequencer writes, and refuses an earlier change, a repeat, a gap and another value", () => {
    const written = derived.map(({ entry }) => entry);
    expect(cutMismatch(derived, written)).toBeUndefined();
    // The address's value may be the store's: any holder is accepted.
    expect(cutMismatch(derived, [written[0]!, { ...written[1]!, value: { deviceId: "c" } }])).toBeUndefined();
    expect(cutMismatch(derived, [{ ...written[0]!, seq: 4, value: { state: "active" } }, written[1]!])).toMatch(
      /where the cut's next change/,
    );
    expect(cutMismatch(derived, [...written, written[0]!])).toMatch(/beyond the cut's changes/);
    expect(cutMismatch(derived, [written[0]!])).toMatch(/leaves out binding 10.0.0.1/);
    expect(cutMismatch(derived, [{ ...written[0]!, value: { state: "active" } }, written[1]!])).toMatch(/does not carry the value/);
  });
});

describe("a cut's bindings, ordered by their store revisions", () => {
  // Shard 1 released the address (revision 2) before shard 3's device took it (revision 3); shard 3 is read first.
  const perShard = [
    [],
    [{ seq: 7, feed: [change("binding", "10.0.0.9", null, 2)] }],
    [],
    [{ seq: 2, feed: [change("binding", "10.0.0.9", { deviceId: "b" }, 3)] }],
  ];

  it("carries the highest revision, with its record's value, whichever shard comes last", () => {
    const reversed = cutEntries([perShard[0]!, perShard[3]!, perShard[2]!, perShard[1]!]);
    for (const derived of [cutEntries(perShard), reversed]) {
      expect(derived).toHaveLength(1);
      expect(derived[0]!.entry.value).toEqual({ deviceId: "b" });
      expect(derived[0]!.rev).toBe(3);
      // Its value is checked: revisions make the record's value the answer, not the store's.
      expect(storeValued(derived[0]!)).toBe(false);
      expect(cutMismatch(derived, [{ ...derived[0]!.entry, value: { deviceId: "c" } }])).toMatch(/does not carry the value/);
    }
  });

  it("leaves out a change the store has moved past, and only that one", () => {
    // The release alone in its cut (the taker's change was sequenced before it): superseded once the store is at 3.
    const release = cutEntries([[], perShard[1]!]);
    expect(leftOut(release, [])).toHaveLength(1);
    const superseded = supersededBy(release, new Map([["10.0.0.9", 3]]));
    expect(cutMismatch(release, [], superseded)).toBeUndefined();
    // Carried all the same (sequenced while the store was still at 2), it must carry its record's value.
    expect(cutMismatch(release, [release[0]!.entry], superseded)).toBeUndefined();
    // The store at its own revision: leaving it out drops a change.
    expect(cutMismatch(release, [], supersededBy(release, new Map([["10.0.0.9", 2]])))).toMatch(/leaves out binding 10.0.0.9/);
  });
});
