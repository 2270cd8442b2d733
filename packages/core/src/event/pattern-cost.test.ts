/**
 * What matching a tenant's pattern may cost (review 86). Rules and webhook subscriptions of every tenant are matched by
 * one shared consumer, so a pattern's matching cost is bounded when it is accepted: each of its conditions costs a
 * pass over the event at most. Counted in steps (`MatchMeter`), never timed.
 */
import { describe, expect, it } from "vitest";
import { rules } from "../platform/rules.ts";
import { maxEntryBytes } from "./eventbridge-publisher.ts";
import { type MatchMeter, matchesPattern, maxPatternConditions, maxSimrootPatternBytes, validateSimrootPattern } from "./pattern.ts";

const range = (count: number) => Array.from({ length: count }, (_, index) => index);
const bytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

/** JSON nodes: objects, arrays and scalars. */
function nodes(value: unknown): number {
  if (Array.isArray(value)) return 1 + value.reduce((sum: number, each) => sum + nodes(each), 0);
  if (typeof value === "object" && value !== null) return 1 + Object.values(value).reduce((sum: number, each) => sum + nodes(each), 0);
  return 1;
}

// The review's patterns: each well under 16 KiB, and each cost seconds per event.
const manyBranches = { source: ["simroot"], detail: { data: { $or: range(300).map((n) => ({ items: { v: [`value-${n}`] } })) } } };
const manyWildcards = { source: ["simroot"], detail: { data: { tags: range(692).map((n) => ({ wildcard: `*${n}*` })) } } };

/** The largest event the bus carries (EventBridge's 256 KiB an entry): an array of small objects, the most nodes. */
function largestEvent() {
  const items: { v: string; n: number }[] = [];
  const event = { source: "simroot", "detail-type": "policy.updated", detail: { data: { items, tags: [] as string[] } } };
  // Counted as it grows (an item and a tag, their commas included), not stringified each time.
  for (let size = bytes(event); ; ) {
    const item = { v: `value-${items.length % 1000}z`, n: items.length };
    const tag = `t${items.length % 100}`;
    size += bytes(item) + bytes(tag) + 2;
    if (size > maxEntryBytes - 64) return event;
    items.push(item);
    event.detail.data.tags.push(tag);
  }
}

/** Grows `build(count)` while the validator admits it: the largest of its shape the bound still takes. */
function largestAdmitted(build: (count: number) => Record<string, unknown>) {
  let count = 1;
  while (admitted(build(count + 1))) count++;
  return build(count);
}

function admitted(pattern: unknown): boolean {
  try {
    validateSimrootPattern(pattern);
    return true;
  } catch {
    return false;
  }
}

describe("a pattern's matching cost is bounded when it is accepted", () => {
  it("refuses the review's patterns, naming where the conditions ran out", () => {
    for (const pattern of [manyBranches, manyWildcards]) expect(bytes(pattern)).toBeLessThan(maxSimrootPatternBytes);
    expect(() => validateSimrootPattern(manyBranches)).toThrow(/"detail\.data\.\$or\[\d+\]".*more than 100 conditions/);
    expect(() => validateSimrootPattern(manyWildcards)).toThrow(/"detail\.data\.tags\[\d+\]".*more than 100 conditions/);
  });

  it("takes every realistic pattern: the platform's own, the documented ones, and a long list of exact values", () => {
    const documented = [
      { source: ["simroot"], "detail-type": ["anomaly.detected"], detail: { data: { kind: ["new-destination"] } } },
      {
        source: ["simroot"],
        "detail-type": ["device.quarantined", "device.suspended"],
        detail: { data: { reason: [{ prefix: "rule" }] } },
      },
      {
        source: ["simroot"],
        detail: { $or: [{ data: { score: [{ numeric: [">", 0.8] }] } }, { data: { kind: [{ "anything-but": ["a", "b"] }] } }] },
      },
      // Exact values of a field count once (one lookup per event value): a rule over 1,000 named devices.
      { source: ["simroot"], subject: range(1_000).map((n) => `dev_${n}`) },
    ];
    const platform = Object.values(rules).flatMap((rule) => ("pattern" in rule ? [rule.pattern] : []));
    for (const pattern of [...documented, ...platform])
      expect(() => validateSimrootPattern({ ...pattern, source: ["simroot"] })).not.toThrow();
  });

  it("matches the worst admitted patterns against the largest event in steps bounded by conditions times event nodes", () => {
    const event = largestEvent();
    expect(bytes(event)).toBeLessThanOrEqual(maxEntryBytes);
    const eventNodes = nodes(event);
    // Each condition is tried at most once per event node it can reach, and a field also walks the nodes it holds.
    const bound = 2 * maxPatternConditions * eventNodes;
    const worst = {
      "many $or branches into the largest array": largestAdmitted((count) => ({
        source: ["simroot"],
        detail: { data: { $or: range(Math.max(2, count)).map((n) => ({ items: { v: [`nothing-${n}`] } })) } },
      })),
      "many wildcards over the largest array": largestAdmitted((count) => ({
        source: ["simroot"],
        detail: { data: { items: { v: range(count).map((n) => ({ wildcard: `*-${n}*y` })) } } },
      })),
      "many fields of one object, tried on every item": largestAdmitted((count) => ({
        source: ["simroot"],
        detail: { data: { items: Object.fromEntries([...range(count).map((n) => [`f${n}`, [{ exists: false }]]), ["v", ["never"]]]) } },
      })),
    };
    const steps: Record<string, number> = {};
    for (const [name, pattern] of Object.entries(worst)) {
      validateSimrootPattern(pattern);
      const meter: MatchMeter = { steps: 0 };
      expect(matchesPattern(pattern, event, meter), name).toBe(false);
      steps[name] = meter.steps;
    }
    console.log({ eventBytes: bytes(event), eventNodes, bound, steps });
    for (const [name, count] of Object.entries(steps)) {
      expect(count, name).toBeGreaterThan(eventNodes / 4);
      expect(count, name).toBeLessThanOrEqual(bound);
    }
    // Unbounded, the review's pattern cost over twice what the bound allows any pattern on the same event.
    const meter: MatchMeter = { steps: 0 };
    matchesPattern(manyBranches, event, meter);
    expect(meter.steps).toBeGreaterThan(bound);
  });

  it("a field's exact values cost one lookup per event value however many there are", () => {
    const event = largestEvent();
    const meter = (values: number): number => {
      const pattern = { source: ["simroot"], detail: { data: { items: { v: range(values).map((n) => `other-${n}`) } } } };
      validateSimrootPattern(pattern);
      const counted: MatchMeter = { steps: 0 };
      matchesPattern(pattern, event, counted);
      return counted.steps;
    };
    expect(meter(1)).toBeGreaterThan(0);
    expect(meter(1_000)).toBe(meter(1));
  });
});
