import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Parser } from "@asyncapi/parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asyncApiText } from "../packages/api/src/contracts.ts";
import { call, startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

/** The event types the code commits with a literal type (`domainEvent(ctx, "x.y", …)`), and the integrations' deliveries. */
function emittedTypes(): Set<string> {
  const root = join(import.meta.dirname, "..", "packages", "core", "src");
  const files = readdirSync(root, { recursive: true, encoding: "utf8" }).filter((file) => file.endsWith(".ts") && !/test/.test(file));
  const types = new Set<string>();
  for (const file of files) {
    const text = readFileSync(join(root, file), "utf8");
    for (const match of text.matchAll(/domainEvent\(\s*[\w.]+,\s*"([a-z0-9._-]+)"/g)) types.add(match[1]!);
    const integrations = /export type IntegrationName = ((?:\s*\|?\s*"[a-z]+")+);/.exec(text)?.[1];
    for (const name of integrations?.match(/[a-z]+/g) ?? []) types.add(`integration.${name}-synced`);
  }
  return types;
}

describe("/asyncapi.json", () => {
  it("documents every event type the code commits (review 55: sources' and integrations' events reached receivers undocumented)", async () => {
    const messages: Record<string, { name: string }> = (await call(runtime, undefined, "GET", "/asyncapi.json")).json.components.messages;
    const documented = new Set(Object.values(messages).map((message) => message.name));
    const emitted = emittedTypes();
    expect(emitted.size).toBeGreaterThan(15);
    expect([...emitted].filter((type) => !documented.has(type)).sort()).toEqual([]);
  });

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
