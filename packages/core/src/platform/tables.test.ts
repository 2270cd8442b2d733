import { describe, expect, it } from "vitest";
import { enforcementViewSchema } from "../device/device.ts";
import { bindingValue } from "../feed/wire.ts";
import { tables } from "./tables.ts";

describe("the identity table's byTenant index", () => {
  const included = new Set<string>(tables.identity.indexes.byTenant.include);

  it("copies a device's enforcement view (the snapshot parses it from the copy), and nothing a fact rewrites", () => {
    expect(Object.keys(enforcementViewSchema.shape).filter((field) => !included.has(field))).toEqual([]);
    // A copied field every fact changes would rewrite the copy with every fact (2 write units in the commit).
    expect(["history", "identity", "updatedAt", "revision"].filter((field) => included.has(field))).toEqual([]);
  });

  it("copies every field of a binding and of a revocation marker the snapshot reads", () => {
    const binding = bindingValue({ deviceId: "d", address: "a", bearer: "b", apn: "x" });
    expect(Object.keys(binding).filter((field) => !included.has(field))).toEqual([]);
    expect(["view", "revokedAt", "since"].filter((field) => !included.has(field))).toEqual([]);
  });
});
