import { describe, expect, it } from "vitest";
import { beyondCut, cutEntries, cutMismatch, leftDefect, leftIds, leftOutOf, storeValued } from "./cut.ts";

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

  it("reaches the change that wrote the store's revision when it is past the cut", () => {
    // The release alone in its cut, the store at revision 3, written by shard 3's record 2, not in the cut.
    const release = cutEntries([[], perShard[1]!]);
    const store = new Map([["10.0.0.9", { rev: 3, by: { shard: 3, seq: 2 } }]]);
    expect([...beyondCut(release, store, [0, 7, 0, 1])]).toEqual([[3, 2]]);
    expect(leftOutOf(release, store, [0, 6, 0, 1])).toEqual([]);
  });

  it("leaves out a change an earlier version overtook, naming the record that did, and the verifier checks that record", () => {
    const release = cutEntries([[], perShard[1]!]);
    const store = new Map([["10.0.0.9", { rev: 3, by: { shard: 3, seq: 2 } }]]);
    // The base (where the version before ended) is past shard 3's record 2: an earlier version carried the takeover.
    const base = [0, 6, 0, 2];
    const left = leftOutOf(release, store, base);
    expect(left).toEqual([{ key: "10.0.0.9", rev: 2, by: { shard: 3, seq: 2 } }]);
    const feedAt = ({ shard, seq }: { shard: number; seq: number }) => perShard[shard]!.find((record) => record.seq === seq)?.feed;
    expect(leftDefect(release, left, base, feedAt)).toBeUndefined();
    expect(cutMismatch(release, [], leftIds(left))).toBeUndefined();
    // Carried and named as left out at once: refused.
    expect(cutMismatch(release, [release[0]!.entry], leftIds(left))).toMatch(/names as left out/);
    // Left out without a name: a change dropped.
    expect(cutMismatch(release, [])).toMatch(/leaves out binding 10.0.0.9/);
    // A record no earlier version carried (the takeover came later): refused, whatever it says.
    expect(leftDefect(release, left, [0, 6, 0, 1], feedAt)).toMatch(/no earlier version carried/);
    // A record that is no later change of the address: refused.
    expect(leftDefect(release, [{ ...left[0]!, by: { shard: 1, seq: 7 } }], [0, 7, 0, 2], feedAt)).toMatch(/no later change/);
  });

  it("names a device's labels before the cut's first change of it, when a change of the cut moved them", () => {
    const device = (labels: Record<string, string>) => ({ state: "active", labels });
    const relabel = (from: Record<string, string>, to: Record<string, string>) => ({
      ...change("device", "a", device(to)),
      labelsBefore: from,
    });
    // A fact (labels as they were), a relabel, another fact: before the cut, the first change's labels.
    const moved = cutEntries([
      [
        { seq: 1, feed: [change("device", "a", device({ site: "north" }))] },
        { seq: 2, feed: [relabel({ site: "north" }, { site: "west" })] },
        { seq: 3, feed: [change("device", "a", device({ site: "west" })), change("device", "b", device({ site: "east" }))] },
      ],
    ]);
    expect(moved.map(({ entry }) => [entry.key, entry.labelsBefore])).toEqual([
      ["a", { site: "north" }],
      ["b", undefined],
    ]);
    // Two relabels: the labels before the first.
    const twice = cutEntries([
      [{ seq: 1, feed: [relabel({ site: "north" }, { site: "west" }), relabel({ site: "west" }, { site: "east" })] }],
    ]);
    expect(twice[0]!.entry.labelsBefore).toEqual({ site: "north" });
    // A version that leaves them out, or names others, does not carry what its records say.
    const written = moved.map(({ entry }) => entry);
    expect(cutMismatch(moved, written)).toBeUndefined();
    const { labelsBefore: _dropped, ...bare } = written[0]!;
    expect(cutMismatch(moved, [bare, written[1]!])).toMatch(/labels its cut's records held before it/);
    expect(cutMismatch(moved, [written[0]!, { ...written[1]!, labelsBefore: { site: "north" } }])).toMatch(/labels its cut's records/);
  });
});
