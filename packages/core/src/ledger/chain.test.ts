import { describe, expect, it } from "vitest";
import { canonicalJson, chainHash } from "./chain.ts";
import { canonicalJsonBefore as reference } from "./chain.test-support.ts";

/** A small deterministic generator (mulberry32), so a failure names a value that reproduces. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const keys = ["a", "B", "é", "10", "2", "", "z\n", '"q"', "\u2028", "ü", "Z", "_", "aa", "a b", "😀", "\u{10000}", "\uff5e"];
function value(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 3 ? 6 : 9));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return next() < 0.5;
    case 2:
      return [0, -0, 1.5, -3, 1e21, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY][Math.floor(next() * 8)];
    case 3:
      return keys[Math.floor(next() * keys.length)]! + String(Math.floor(next() * 100));
    case 4:
      return undefined;
    case 5:
      return "plain";
    case 6:
    case 7: {
      const record: Record<string, unknown> = {};
      for (let field = Math.floor(next() * 6); field > 0; field--) record[keys[Math.floor(next() * keys.length)]!] = value(next, depth + 1);
      return record;
    }
    default:
      return Array.from({ length: Math.floor(next() * 5) }, () => value(next, depth + 1));
  }
}

describe("canonicalJson", () => {
  it("gives the same bytes as the form the stored hashes were made with, for any JSON-like value", () => {
    const next = random(20261203);
    for (let sample = 0; sample < 5_000; sample++) {
      const input = value(next, 0);
      expect(canonicalJson(input), JSON.stringify(input)).toBe(reference(input));
    }
  });

  it("sorts keys by UTF-16 code units, leaves out undefined fields and writes what JSON cannot hold as null", () => {
    const input = { b: 1, a: [undefined, () => 1], "😀": 1, "\uff5e": 2, c: undefined, d: () => 1, e: new Date(0) };
    expect(canonicalJson(input)).toBe('{"a":[null,null],"b":1,"d":null,"e":{},"😀":1,"～":2}');
    expect(canonicalJson(undefined)).toBe("null");
  });

  it("chains over those bytes", () => {
    expect(chainHash("0".repeat(64), { b: 2, a: 1 })).toBe(chainHash("0".repeat(64), { a: 1, b: 2 }));
    expect(chainHash("0".repeat(64), { a: 1 })).not.toBe(chainHash("0".repeat(64), { a: 2 }));
  });
});
