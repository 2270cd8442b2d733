import { describe, expect, it } from "vitest";
import { cutEntries, cutMismatch, storeValued } from "./cut.ts";

const change = (kind: string, key: string, value: Record<string, unknown> | null) => ({ kind, key, value });

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
