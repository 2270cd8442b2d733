import { describe, expect, it } from "vitest";
import { unreadablePatternMatch } from "./event-readers.ts";

const operator = (pattern: Record<string, unknown>) => unreadablePatternMatch("operator", pattern);

describe("which patterns an operator's rule may hold (review 90)", () => {
  it("allows what names only types an operator reads, or matches no type at all", () => {
    expect(operator({ source: ["simroot"], "detail-type": ["device.registered", "anomaly.detected"] })).toBeUndefined();
    expect(operator({ "detail-type": [{ prefix: "device." }] })).toBeUndefined();
    expect(operator({ detail: { type: [{ prefix: "incident." }] } })).toBeUndefined();
    expect(operator({ detail: { $or: [{ type: ["device.updated"] }, { type: ["grant.started"] }] } })).toBeUndefined();
    expect(operator({ $or: [{ "detail-type": ["device.registered"] }, { detail: { type: ["device.updated"] } }] })).toBeUndefined();
    expect(operator({ "detail-type": [{ exists: false }] })).toBeUndefined();
  });

  it("refuses what may match an admin-only type, at the field that admits it", () => {
    expect(operator({ "detail-type": ["key.created"] })).toMatchObject({
      path: "detail-type",
      message: expect.stringContaining("key.created"),
    });
    expect(operator({ "detail-type": [{ "anything-but": ["device.registered"] }] })?.path).toBe("detail-type");
    expect(operator({ "detail-type": [{ wildcard: "*.created" }] })?.message).toContain("key.created");
    expect(operator({ "detail-type": [{ "equals-ignore-case": "SOURCE.CREATED" }] })?.message).toContain("source.created");
    expect(operator({ detail: { type: [{ suffix: "-advanced" }] } })).toMatchObject({ path: "detail.type" });
    expect(operator({ $or: [{ "detail-type": ["device.registered"] }, { "detail-type": ["key.revoked"] }] })).toMatchObject({
      path: "$or",
      message: expect.stringContaining("key.revoked"),
    });
    // Naming no type matches every one.
    expect(operator({ source: ["simroot"], detail: { data: { kind: ["new-destination"] } } })).toMatchObject({ path: "" });
  });

  it("lets an admin match anything", () => {
    expect(unreadablePatternMatch("admin", { source: ["simroot"] })).toBeUndefined();
  });
});
