import { Parser } from "@asyncapi/parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asyncApiText } from "../packages/api/src/contracts.ts";
import { call, startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

describe("/asyncapi.json", () => {
  it("served is the one core's event catalogue generates (after changing an event, run `npm run contracts`)", async () => {
    const served = await call(runtime, undefined, "GET", "/asyncapi.json");
    expect(served.text, "packages/api/asyncapi.json is stale: run `npm run contracts`").toBe(asyncApiText());
  });

  it("loads in @asyncapi/parser without errors and documents the fields the applier adds", async () => {
    const served = await call(runtime, undefined, "GET", "/asyncapi.json");
    const { document, diagnostics } = await new Parser().parse(served.text);
    expect(
      diagnostics
        .filter((diagnostic) => diagnostic.severity === 0)
        .map((diagnostic) => `${diagnostic.message} at ${diagnostic.path.join(".")}`),
    ).toEqual([]);
    expect(document).toBeDefined();
    const roaming = document!
      .messages()
      .all()
      .find((message) => message.name() === "device.roaming-changed");
    const data = roaming!.payload()!.properties()!["data"]!.json() as { allOf: { properties?: Record<string, unknown> }[] };
    const documented = new Set(data.allOf.flatMap((part) => Object.keys(part.properties ?? {})));
    for (const field of ["roaming", "allowed", "since", "country", "deviceId", "cause"]) expect(documented, field).toContain(field);
  });
});
