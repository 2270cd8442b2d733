import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Device } from "../../device/device.ts";
import { canonicalJson } from "../../ledger/chain.ts";
import { attributeValue, decodeAttributeValue, maxThingAttributes, thingAttributes } from "./iot-attributes.ts";

const device = (labels: Record<string, string>): Device => ({
  id: "dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST",
  tenantId: "ten_1",
  state: "active",
  eid: "89049032123451234512345678901235",
  iccids: ["8944500102198304826", "8944500102198304834"],
  imei: "490154203237518",
  labels,
  identity: { state: "active", stateAt: "2026-12-02T05:00:00Z", sessions: {}, profiles: {} },
  createdAt: "2026-12-02T05:00:00Z",
  updatedAt: "2026-12-02T05:00:00Z",
  revision: 1,
});

const iotValue = /^[a-zA-Z0-9_.,@/:#=[\]-]{0,800}$/;
const iotKey = /^[a-zA-Z0-9_.,@/:#-]{1,128}$/;

describe("a device as IoT thing attributes", () => {
  it("keeps every label when they fit, in IoT's key and value charsets", () => {
    const attributes = thingAttributes(device({ fleet: "meters", site: "Lyon Nord", note: "é/ü" }));
    expect(attributes["sim.iccid"]).toBe("8944500102198304826,8944500102198304834");
    for (const [key, value] of Object.entries(attributes)) {
      expect(key).toMatch(iotKey);
      expect(value).toMatch(iotValue);
    }
    expect(decodeAttributeValue(attributes["label.site"]!)).toBe("Lyon Nord");
    expect(decodeAttributeValue(attributes["label.note"]!)).toBe("é/ü");
    expect(attributes["simroot.labels-omitted"]).toBeUndefined();
  });

  it("stays within 50 attributes with 64 labels, and says what it left out", () => {
    const labels = Object.fromEntries(Array.from({ length: 64 }, (_, index) => [`k${String(index).padStart(2, "0")}`, `v${index}`]));
    const attributes = thingAttributes(device(labels));
    expect(Object.keys(attributes)).toHaveLength(maxThingAttributes);
    const kept = Object.keys(attributes).filter((key) => key.startsWith("label."));
    expect(kept).toEqual(
      Object.keys(labels)
        .slice(0, kept.length)
        .map((key) => `label.${key}`),
    );
    expect(Number(attributes["simroot.labels-omitted"])).toBe(64 - kept.length);
    expect(attributes["simroot.labels-digest"]).toBe(createHash("sha256").update(canonicalJson(labels)).digest("hex"));
  });

  it("never lets a value that looks encoded pass as is", () => {
    expect(decodeAttributeValue(attributeValue("b64:abc"))).toBe("b64:abc");
  });
});
