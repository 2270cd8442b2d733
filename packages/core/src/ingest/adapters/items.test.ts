/** Events the catalogue's schema allows but the bus or DynamoDB could not carry are refused, not accepted and lost. */
import { describe, expect, it } from "vitest";
import type { NormalizedEvent } from "../../catalogue/catalogue.ts";
import { checkedItem } from "./items.ts";

const unhandled = (summary: Record<string, unknown>) =>
  ({
    type: "source.unhandled",
    dedupeKey: "k1",
    occurredAt: "2026-03-01T12:00:00.000Z",
    device: { imsi: "208011234567890" },
    sourceType: "vendor.event",
    data: { sourceType: "vendor.event", summary },
  }) as NormalizedEvent;

const nested = (depth: number) => {
  let value: unknown = 1;
  for (let level = 0; level < depth; level++) value = { a: value };
  return value;
};

describe("checkedItem", () => {
  it("accepts a summary DynamoDB and the bus can carry", () => {
    const event = unhandled({ cellId: "26201AB12CD34", age: 2, ratio: 0.25, list: [1, "two", null], inner: nested(10) });
    expect(checkedItem(3, [event])).toEqual({ index: 3, ok: true, events: [event] });
  });

  it.each([
    [
      "nesting deeper than 16 levels",
      { deep: nested(100_000) },
      "data.summary.deep.a.a.a.a.a.a.a.a.a.a.a.a.a",
      /nested deeper than 16 levels/,
    ],
    ["a number beyond Number.MAX_SAFE_INTEGER", { cellId: 1e300 }, "data.summary.cellId", /cannot be stored/],
    ["a number below DynamoDB's smallest magnitude", { ratio: -1e-300 }, "data.summary.ratio", /cannot be stored/],
    ["an empty key", { "": 1 }, "data.summary", /empty key/],
    ["an event larger than one bus entry should carry", { texts: Array(100).fill("x".repeat(700)) }, "", /bytes of JSON/],
    ["text longer than 1,000 characters", { text: "x".repeat(1_001) }, "data.summary.text", /text is kept up to 1000/],
  ])("refuses %s, naming where", (_, summary, path, message) => {
    expect(checkedItem(0, [unhandled(summary)])).toEqual({
      index: 0,
      ok: false,
      issues: [{ path, message: expect.stringMatching(message) }],
    });
  });
});
