import { describe, expect, it } from "vitest";
import { compilePolicy } from "./compile.ts";
import type { LabelSelector } from "./model.ts";
import { compileSelector, labelSetKey, selectorKey } from "./selector.ts";

const matches = (selector: LabelSelector, labels: Record<string, string>) => compileSelector(selector)(labels);

describe("label selectors", () => {
  it("matches every device with an empty selector", () => {
    expect(matches({}, {})).toBe(true);
    expect(matches({ matchLabels: {}, matchExpressions: [] }, { fleet: "meters" })).toBe(true);
  });

  it("needs every matchLabels pair", () => {
    const selector = { matchLabels: { fleet: "meters", site: "lyon" } };
    expect(matches(selector, { fleet: "meters", site: "lyon", tier: "gold" })).toBe(true);
    expect(matches(selector, { fleet: "meters" })).toBe(false);
    expect(matches(selector, { fleet: "meters", site: "porto" })).toBe(false);
  });

  it("In: the key is present with one of the values", () => {
    const selector: LabelSelector = { matchExpressions: [{ key: "site", operator: "In", values: ["lyon", "porto"] }] };
    expect(matches(selector, { site: "porto" })).toBe(true);
    expect(matches(selector, { site: "oslo" })).toBe(false);
    expect(matches(selector, {})).toBe(false);
  });

  it("NotIn: the key is absent or has none of the values", () => {
    const selector: LabelSelector = { matchExpressions: [{ key: "site", operator: "NotIn", values: ["lyon"] }] };
    expect(matches(selector, { site: "porto" })).toBe(true);
    expect(matches(selector, {})).toBe(true);
    expect(matches(selector, { site: "lyon" })).toBe(false);
  });

  it("Exists and DoesNotExist look at the key only", () => {
    expect(matches({ matchExpressions: [{ key: "canary", operator: "Exists" }] }, { canary: "" })).toBe(true);
    expect(matches({ matchExpressions: [{ key: "canary", operator: "Exists" }] }, {})).toBe(false);
    expect(matches({ matchExpressions: [{ key: "canary", operator: "DoesNotExist" }] }, {})).toBe(true);
    expect(matches({ matchExpressions: [{ key: "canary", operator: "DoesNotExist" }] }, { canary: "yes" })).toBe(false);
  });

  it("combines labels and expressions with AND", () => {
    const selector: LabelSelector = {
      matchLabels: { fleet: "meters" },
      matchExpressions: [
        { key: "site", operator: "In", values: ["lyon"] },
        { key: "retired", operator: "DoesNotExist" },
      ],
    };
    expect(matches(selector, { fleet: "meters", site: "lyon" })).toBe(true);
    expect(matches(selector, { fleet: "meters", site: "lyon", retired: "2024" })).toBe(false);
    expect(matches(selector, { fleet: "cameras", site: "lyon" })).toBe(false);
  });

  it("does not mistake inherited properties for labels", () => {
    expect(matches({ matchExpressions: [{ key: "constructor", operator: "Exists" }] }, {})).toBe(false);
    expect(matches({ matchExpressions: [{ key: "toString", operator: "NotIn", values: ["x"] }] }, {})).toBe(true);
  });

  it("keys label sets and selectors canonically", () => {
    expect(labelSetKey({ a: "1", b: "2" })).toBe(labelSetKey({ b: "2", a: "1" }));
    expect(labelSetKey({ a: "1,b" })).not.toBe(labelSetKey({ a: "1", b: "" }));
    expect(selectorKey({ matchExpressions: [{ key: "k", operator: "In", values: ["b", "a"] }] })).toBe(
      selectorKey({ matchExpressions: [{ key: "k", operator: "In", values: ["a", "b"] }] }),
    );
  });

  it("is rejected when In has no values or Exists has some", () => {
    const rule = (selector: unknown) => ({
      id: "r",
      name: "r",
      selector,
      destinations: [{ fqdn: "a.example.com", protocol: "tcp" }],
      effect: "allow",
    });
    expect(() => compilePolicy({ version: 1, rules: [rule({ matchExpressions: [{ key: "k", operator: "In" }] }) as never] })).toThrow(
      /values/,
    );
    expect(() =>
      compilePolicy({ version: 1, rules: [rule({ matchExpressions: [{ key: "k", operator: "Exists", values: ["x"] }] }) as never] }),
    ).toThrow(/values/);
  });
});
