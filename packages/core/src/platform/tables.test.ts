import { describe, expect, it } from "vitest";
import { deviceSchema } from "../device/device.ts";
import { bindingValue } from "../feed/wire.ts";
import { tables } from "./tables.ts";

describe("the identity table's byTenant index", () => {
  const included = new Set<string>(tables.identity.indexes.byTenant.include);

  it("copies every field of a device (listings and snapshots parse devices from it), and not the fact history", () => {
    const fields = Object.keys(deviceSchema.shape);
    expect(fields.filter((field) => !included.has(field))).toEqual([]);
    expect(included.has("history")).toBe(false);
  });

  it("copies every field of a binding and of a revocation marker the snapshot reads", () => {
    const binding = bindingValue({ deviceId: "d", address: "a", bearer: "b", apn: "x" });
    expect(Object.keys(binding).filter((field) => !included.has(field))).toEqual([]);
    expect(["view", "revokedAt", "since"].filter((field) => !included.has(field))).toEqual([]);
  });
});
