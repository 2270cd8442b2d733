import { describe, expect, it } from "vitest";
import { Lru } from "./lru.ts";

describe("the LRU", () => {
  it("evicts the least recently used past its entry count", () => {
    const lru = new Lru<string, number>(2);
    lru.set("a", 1);
    lru.set("b", 2);
    expect(lru.get("a")).toBe(1);
    lru.set("c", 3);
    expect([lru.get("a"), lru.get("b"), lru.get("c")]).toEqual([1, undefined, 3]);
  });

  it("tells whether it holds a key without making it the most recent", () => {
    const lru = new Lru<string, number>(2);
    lru.set("a", 1);
    lru.set("b", 2);
    expect([lru.has("a"), lru.has("z")]).toEqual([true, false]);
    lru.set("c", 3);
    expect([lru.has("a"), lru.has("b"), lru.has("c")]).toEqual([false, true, true]);
  });

  it("holds at most its weight budget, whatever the count, and keeps no entry heavier than the budget", () => {
    const lru = new Lru<string, string>(1000, { maxWeight: 10, weigh: (value) => value.length });
    lru.set("a", "xxxx");
    lru.set("b", "xxxx");
    lru.set("c", "xxxx");
    expect(lru.weight).toBeLessThanOrEqual(10);
    expect([lru.get("a"), lru.get("b"), lru.get("c")]).toEqual([undefined, "xxxx", "xxxx"]);
    lru.set("b", "x");
    expect(lru.weight).toBe(5);
    lru.set("huge", "x".repeat(11));
    expect(lru.get("huge")).toBeUndefined();
    expect(lru.size).toBe(2);
  });
});
