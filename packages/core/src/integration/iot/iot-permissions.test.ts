import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { integrationPermissions } from "../../platform/integrations.ts";

describe("the IoT consumer's declared permissions", () => {
  it("cover every IoT API call the adapter makes, and nothing it does not make", () => {
    const source = readFileSync(join(import.meta.dirname, "iot-sdk.ts"), "utf8");
    const used = new Set([...source.matchAll(/new (\w+)Command\(/g)].map((match) => `iot:${match[1]}`));
    const declared = new Set(integrationPermissions.iotSync.flatMap((statement) => statement.actions));
    expect([...used].sort()).toEqual([...declared].sort());
  });
});
