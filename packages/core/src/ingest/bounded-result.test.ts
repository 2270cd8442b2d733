/** The ingest answer stays within `maxAnswerBytes` whatever the rejected items' errors say (review 80). */
import { describe, expect, it } from "vitest";
import { boundedResult, maxAnswerBytes, maxErrorsPerItem } from "./ingest.ts";

const accepted = (count: number, clampedFrom?: string) =>
  Array.from({ length: count }, (_, index) => ({
    index,
    id: "evt_01M93Y1WA2J5J9AA2566XZ07HJ",
    type: "device.reachability-changed",
    ...(clampedFrom === undefined ? {} : { clampedFrom }),
  }));

describe("boundedResult", () => {
  it("leaves a usual answer as it is", () => {
    const rejected = [{ index: 2, errors: [{ path: "device.imsi", message: "Invalid input" }] }];
    expect(boundedResult("src_1", accepted(2), rejected)).toEqual({ sourceId: "src_1", accepted: accepted(2), rejected });
  });

  it("stays within the bound for 1,000 items whose errors name the sender's own long keys", () => {
    // Control characters take 6 bytes as JSON, a character of the BMP past U+07FF 3 bytes of UTF-8.
    const errors = Array.from({ length: 50 }, (_, n) => ({
      path: `data.${"\u0001".repeat(10_000)}${n}`,
      message: "\u20ac".repeat(10_000),
    }));
    const rejected = Array.from({ length: 500 }, (_, n) => ({ index: 500 + n, errors }));
    const result = boundedResult("src_1", accepted(500, `2099-01-01T00:00:00.${"0".repeat(2000)}+00:00`), rejected);
    expect(Buffer.byteLength(JSON.stringify(result))).toBeLessThanOrEqual(maxAnswerBytes);
    expect(result.accepted.every((item) => item.clampedFrom === "2099-01-01T00:00:00.000Z")).toBe(true);
    expect(result.rejected.map((item) => item.index)).toEqual(rejected.map((item) => item.index));
    const [first] = result.rejected;
    expect(first?.errors).toHaveLength(maxErrorsPerItem);
    expect(first?.unlistedErrors).toBe(50 - maxErrorsPerItem);
    expect(first?.errors[0]?.path.length).toBe(257);
    expect(result.rejected.at(-1)).toEqual({ index: 999, errors: [], unlistedErrors: 50 });
  });

  it("cuts a long message without splitting a surrogate pair", () => {
    const message = `${"x".repeat(511)}\u{1F4E1}`;
    const [item] = boundedResult("src_1", [], [{ index: 0, errors: [{ path: "", message }] }]).rejected;
    expect(item?.errors[0]?.message).toBe(`${"x".repeat(511)}…`);
  });
});
