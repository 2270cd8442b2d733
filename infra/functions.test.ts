/**
 * Every function, built the way SST builds it (scripts/bundle/build.ts), against what the
 * platform definition says about it: the size budget, and least privilege (the IAM actions
 * its SDK commands need are exactly the ones infra grants it).
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { build } from "esbuild";
import ts from "typescript";
import { beforeAll, describe, expect, it } from "vitest";
import plugins, { markSchemasPure, withoutSchemaDocs } from "./esbuild-plugins.mjs";
import { functionNames, functions, grantsOf, type FunctionDefinition, type FunctionName } from "../packages/core/src/platform/functions.ts";
import { bundling } from "../packages/core/src/platform/limits.ts";
import { bundleFunction, type Bundle } from "../scripts/bundle/build.ts";
import { actionsNeeded, sdkPackages } from "../scripts/bundle/sdk-actions.ts";
import { integrationPermissions } from "../packages/core/src/platform/integrations.ts";
import { buildConsole } from "../packages/console/src/build.ts";

const root = join(import.meta.dirname, "..");
const bundles = new Map<FunctionName, Bundle>();
beforeAll(async () => {
  for (const name of functionNames) bundles.set(name, await bundleFunction(name));
}, 120_000);

/** The function's grants from the platform definition, and the integration's own (infra/integrations.ts attaches those). */
const integrationActions = (name: FunctionName): string[] =>
  ((integrationPermissions as Record<string, readonly { actions: readonly string[] }[]>)[name] ?? []).flatMap((statement) => [
    ...statement.actions,
  ]);
const granted = (name: FunctionName) =>
  [...new Set([...grantsOf(functions[name]).flatMap((grant) => grant.actions), ...integrationActions(name)])].sort();

/** The clients beyond DynamoDB's a function loads at module init: those its every invocation calls. */
const loadedAtInit: Partial<Record<FunctionName, string[]>> = {
  iotSync: ["@aws-sdk/client-iot"],
  auditArchiver: ["@aws-sdk/client-s3"],
};

describe.each(functionNames)("function %s", (name) => {
  it("is granted every IAM action its code's SDK commands need, and no other", () => {
    const needed = actionsNeeded(bundles.get(name)!.code);
    const grants = granted(name);
    expect({ missing: needed.filter((action) => !grants.includes(action)) }).toEqual({ missing: [] });
    expect({ unused: grants.filter((action) => !needed.includes(action)) }).toEqual({ unused: [] });
  });

  it("has no wildcard action and no table management action", () => {
    for (const action of granted(name)) {
      expect(action).not.toContain("*");
      expect(action).not.toMatch(/^dynamodb:(CreateTable|DeleteTable|UpdateTable|Scan)$/);
    }
  });

  it(`stays within the bundle budget (${bundling.budgetBytes / 1024} KB minified, AWS SDK from the runtime)`, () => {
    const bytes = bundles.get(name)!.bytes;
    const exception = bundling.overBudget[name];
    if (exception === undefined) {
      expect(bytes).toBeLessThanOrEqual(bundling.budgetBytes);
    } else {
      expect(bytes, `${name} grew past its ceiling`).toBeLessThanOrEqual(exception.ceilingBytes);
      expect(bytes, `${name} is back under budget: remove it from bundling.overBudget`).toBeGreaterThan(bundling.budgetBytes);
    }
  });

  it("carries none of what a DynamoDB client gets against DynamoDB Local (no function sets an endpoint)", () => {
    const code = bundles.get(name)!.code;
    expect(code).not.toContain("retryLocalLockWaits");
    expect(code).not.toContain("SIMROOT_DYNAMODB_LOCAL_KEY");
  });

  it("initialises as the Lambda runtime loads it: outside the repository, with only the AWS SDK and its declared files", async () => {
    const dir = await mkdtemp(join(tmpdir(), `simroot-lambda-${name}-`));
    await mkdir(join(dir, "node_modules"));
    for (const scope of ["@aws-sdk", "@smithy", "@aws-crypto"]) {
      await symlink(join(root, "node_modules", scope), join(dir, "node_modules", scope));
    }
    for (const file of (functions[name] as FunctionDefinition).files ?? []) {
      await mkdir(dirname(join(dir, file.to)), { recursive: true });
      // The console is a build output: built here, into where the function ships it, rather than copied from a
      // packages/console/dist another test file may be rebuilding.
      if (file.from === "packages/console/dist") await buildConsole(join(dir, file.to));
      else await copyFile(join(root, file.from), join(dir, file.to));
    }
    await writeFile(join(dir, "index.mjs"), bundles.get(name)!.code);
    const loaded = await initialise(dir, name === "api" ? ["/docs", "/openapi.json", "/asyncapi.json", "/console/"] : []);
    expect(loaded).toMatchObject({ ok: true });
    // The contract documents are the checked-in files the function ships, and so is the console (review 118: /console/
    // answered 503 in AWS).
    if (name === "api") {
      expect(loaded.statuses).toEqual([200, 200, 200, 200]);
      expect(loaded.bodies![3]).toContain("<title>simroot console</title>");
      expect(loaded.bodies![1]).toMatch(/^\{\s*"openapi": "3\.1\.0"/);
      expect(loaded.bodies![2]).toMatch(/^\{\s*"asyncapi": "3\./);
    }
    // The API's reference page and its pinned script are served from what the function ships.
    if (name === "api") {
      const script = /src="([^"]+)"/.exec(loaded.bodies![0]!)?.[1];
      expect(script).toMatch(/^\/docs\/scalar-api-reference-[\d.]+\.js$/);
      expect((await initialise(dir, [script!])).statuses).toEqual([200]);
    }
  });

  it("loads no AWS SDK client at module init but DynamoDB's and the one its every invocation calls", () => {
    // The others are imported on first use (`lazy` in core store/sdk-settings.ts): each is 10 to 40 ms of a cold start.
    const { atInit } = sdkPackages(bundles.get(name)!.code);
    expect(atInit.filter((sdk) => !/^@aws-sdk\/(client|lib|util)-dynamodb$/.test(sdk))).toEqual(loadedAtInit[name] ?? []);
  });

  it("imports no built-in whose ESM binding is slow at module init (node:http, node:https, node:util: taken on use)", () => {
    // Imported as ESM, a built-in builds its module namespace from every export, getters included: node:http's load
    // Node's fetch (undici), 38 ms of CPU on this machine where process.getBuiltinModule takes 3 ms; node:util's 3 ms.
    const code = bundles.get(name)!.code;
    expect(code.match(/(?:from|import)\s*"node:(?:https?|util)"/g) ?? []).toEqual([]);
  });

  it("bundles no AWS SDK code (the Lambda runtime provides it)", () => {
    expect(bundles.get(name)!.inputs.filter((input) => /node_modules\/@(aws-sdk|smithy)\//.test(input.path))).toEqual([]);
  });
});

describe("zod in a function bundle", () => {
  it("parses and validates as it does unbundled, with its JSON Schema conversion left out", async () => {
    const entry = `import { z } from "zod";
      const device = z.object({ imsi: z.string().regex(/^\\d{6,15}$/), labels: z.record(z.string(), z.string()).default({}) });
      const results = [device.safeParse({ imsi: "208011234567890" }), device.safeParse({ imsi: "abc" })];
      const standard = await device["~standard"].validate({ imsi: "12" });
      let conversion;
      try { z.toJSONSchema(device); conversion = "converted"; } catch (error) { conversion = String(error.message); }
      export const outcome = { ok: results.map((r) => r.success), labels: results[0].data.labels, issue: results[1].error.issues[0].code,
        standard: standard.issues?.[0]?.message, conversion, minLength: z.string().min(3).minLength,
        format: z.email().format, minValue: z.number().min(2).minValue, maxLength: z.string().max(9).maxLength };`;
    const built = await build({
      stdin: { contents: entry, resolveDir: root, loader: "js" },
      bundle: true,
      write: false,
      platform: "node",
      format: "esm",
      minify: true,
      plugins,
    });
    const dir = await mkdtemp(join(tmpdir(), "simroot-zod-"));
    await writeFile(join(dir, "entry.mjs"), built.outputFiles[0]!.text);
    const { outcome } = await import(join(dir, "entry.mjs"));
    expect(outcome).toEqual({
      ok: [true, false],
      labels: {},
      issue: "invalid_format",
      standard: "Invalid string: must match pattern /^\\d{6,15}$/",
      conversion: expect.stringMatching(/not in this bundle/),
      // What schemas read from their checks (zod's aggregateChecks, kept beside the processors that throw).
      minLength: 3,
      format: "email",
      minValue: 2,
      maxLength: 9,
    });
    // The conversion module itself is not in any function.
    for (const bundle of bundles.values())
      expect(bundle.inputs.map((input) => input.path)).not.toContain("node_modules/zod/v4/core/to-json-schema.js");
  });
});

/** The calls an expression makes when evaluated that do more than build a schema: `.register(…)`, `.parse(…)`, `z.config(…)`. */
function effectsAtLoad(expression: ts.Node): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node)) return;
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
      const name = node.expression.name.text;
      if (/^(register|parse|safeParse|parseAsync|safeParseAsync|config)$/.test(name)) found.push(node.getText());
    }
    ts.forEachChild(node, visit);
  };
  visit(expression);
  return found;
}

describe("schemas in a function bundle", () => {
  /** The schema ids (`.meta({ id })`) a bundle builds at module init. */
  const schemaIds = (name: FunctionName) => new Set([...bundles.get(name)!.code.matchAll(/\bid:"([A-Za-z]+)"/g)].map((match) => match[1]));

  it("leaves out the schemas no code of the function reaches, and keeps those it does", () => {
    // The detectors consumer imports the policy model's module (a label selector) but no policy rule, device or decision.
    const detectors = schemaIds("detectors");
    for (const unused of ["PolicyRule", "PolicySet", "Device", "Decision", "Grant", "Anomaly"]) expect(detectors).not.toContain(unused);
    for (const used of ["LabelSelector", "TenantSettings", "AuditRecord"]) expect(detectors).toContain(used);
    // The event catalogue's payload schemas ride only with the functions that parse reported events: ingest, the
    // applier, and the reconciler that applies a registered device's parked facts itself (review 138).
    const parsesEvents = functionNames.filter((name) => bundles.get(name)!.code.includes('"source.unhandled"'));
    expect(parsesEvents.sort()).toEqual(["apiIngest", "operatorEvents", "parkedReconciler"]);
    // The management API answers with devices, the policy function with rules and decisions; both audit what they change.
    for (const id of ["Device", "AuditRecord", "TenantSettings"]) expect(schemaIds("api")).toContain(id);
    for (const id of ["PolicyRule", "Decision", "AuditRecord"]) expect(schemaIds("apiPolicy")).toContain(id);
    for (const id of ["PolicyRule", "Decision"]) expect(schemaIds("api")).not.toContain(id);
  });

  it("marks top-level schema declarations pure, and nothing else", () => {
    const source = [
      'import * as z from "zod";',
      "export const a = z.string();",
      "const b: z.ZodType = z",
      "  .object({});",
      "export const c = deviceSchema.pick({ id: true });",
      "export const g = grantSchema",
      "  .extend({ id: z.string() });",
      "const d = register(z.string());",
      "function f() { const e = z.string(); }",
    ].join("\n");
    expect(markSchemasPure(source).split("\n")).toEqual([
      'import * as z from "zod";',
      "export const a = /* @__PURE__ */ z.string();",
      "const b: z.ZodType = /* @__PURE__ */ z",
      "  .object({});",
      "export const c = /* @__PURE__ */ deviceSchema.pick({ id: true });",
      "export const g = /* @__PURE__ */ grantSchema",
      "  .extend({ id: z.string() });",
      "const d = register(z.string());",
      "function f() { const e = z.string(); }",
    ]);
    // A module that does not import zod is left as it is, whatever its `z` is.
    expect(markSchemasPure("const a = z.x();")).toBe("const a = z.x();");
  });

  it("leaves the schemas' descriptions and examples out of the bundles, and the schemas as they parse", async () => {
    const source = [
      'const a = z.string().meta({ description: "an address", example: "10.0.0.1" });',
      'const b = z.object({ n: z.number().meta({ description: "a count" }).optional() }).meta({ id: "B", description: "a b" });',
      "const c = z.string().meta({",
      '  description: "two " + "lines",',
      '  param: { name: "id", in: "path" },',
      "});",
      "const d = register(a).meta;",
    ].join("\n");
    expect(withoutSchemaDocs(source).split("\n")).toEqual([
      "const a = z.string();",
      'const b = z.object({ n: z.number().optional() }).meta({ id: "B" });',
      'const c = z.string().meta({ param: { name: "id", in: "path" } });',
      "const d = register(a).meta;",
    ]);
    // The documents keep them: generated from the sources, which are not changed.
    const openapi = readFileSync(join(root, "packages/api/openapi.json"), "utf8");
    expect(openapi).toContain("IPv4 or IPv6 network, host bits zero");
    for (const bundle of bundles.values()) expect(bundle.code).not.toContain("IPv4 or IPv6 network, host bits zero");
    expect(schemaIds("apiPolicy")).toContain("PolicyRule");
  });

  it("marks in simroot's own sources only single top-level schema declarations that do nothing but build a schema", () => {
    const sources = execFileSync(
      "git",
      ["ls-files", "packages/*/src/*.ts", "packages/*/src/**/*.ts", "functions/src/*.ts", "functions/src/**/*.ts"],
      {
        cwd: root,
        encoding: "utf8",
      },
    )
      .split("\n")
      .filter((file) => file && !file.endsWith(".test.ts"));
    const mark = "/* @__PURE__ */ ";
    let marks = 0;
    for (const file of sources) {
      const source = readFileSync(join(root, file), "utf8");
      const marked = markSchemasPure(source);
      if (marked === source) continue;
      // Where each mark the plugin added lands in the source as written (a source may carry marks of its own).
      const positions: number[] = [];
      for (let at = 0, from = 0; at < marked.length; ) {
        if (marked.startsWith(mark, at) && !source.startsWith(mark, from)) {
          positions.push(from);
          at += mark.length;
        } else {
          at++;
          from++;
        }
      }
      const parsed = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
      const initializers = new Map<number, ts.Expression>();
      for (const statement of parsed.statements) {
        if (!ts.isVariableStatement(statement) || statement.declarationList.declarations.length !== 1) continue;
        const initializer = statement.declarationList.declarations[0]!.initializer;
        if (initializer) initializers.set(initializer.getStart(parsed), initializer);
      }
      for (const position of positions) {
        const initializer = initializers.get(position);
        expect(initializer, `${file}: a mark that is not on a top-level declaration's initializer`).toBeDefined();
        // Registering a schema somewhere, or parsing or configuring at load time, is an effect: such a declaration must
        // not be dropped. What runs at load is the initializer outside the callbacks it passes (refinements, transforms).
        expect(effectsAtLoad(initializer!), file).toEqual([]);
        marks++;
      }
    }
    expect(marks).toBeGreaterThan(100);
  });
});

describe("the permission check itself", () => {
  it("finds a command that a bundle sends but the grants lack", () => {
    const code = `import{GetCommand as a,ScanCommand as b}from"@aws-sdk/lib-dynamodb";import{SignCommand as c}from"@aws-sdk/client-kms";`;
    expect(actionsNeeded(code)).toEqual(["dynamodb:GetItem", "dynamodb:Scan", "kms:Sign"]);
  });

  it("derives a transaction's actions from the item kinds the code builds", () => {
    const code = `import{TransactWriteCommand as t}from"@aws-sdk/lib-dynamodb";const x={ConditionCheck:{TableName:n}},y=[{Put:i}];`;
    expect(actionsNeeded(code)).toEqual(["dynamodb:ConditionCheckItem", "dynamodb:PutItem"]);
  });

  it("reads the commands destructured from a client loaded on first use, and refuses a dynamic import it cannot read", () => {
    const lazyKms = `async function s(m){let{KMSClient:a,SignCommand:b}=await import("@aws-sdk/client-kms");return new a({}).send(new b(m))}`;
    expect(actionsNeeded(lazyKms)).toEqual(["kms:Sign"]);
    expect(sdkPackages(lazyKms)).toEqual({ atInit: [], onUse: ["@aws-sdk/client-kms"] });
    expect(() => actionsNeeded(`async function s(m){let k=await import("@aws-sdk/client-kms");return k.SignCommand}`)).toThrow(
      /not destructured/,
    );
  });

  it("refuses a command it cannot map rather than passing it", () => {
    expect(() => actionsNeeded(`import{ExecuteStatementCommand as e}from"@aws-sdk/client-dynamodb";`)).toThrow(/ExecuteStatementCommand/);
  });
});

/**
 * Imports a function's bundle in a process of its own, from `dir` (as `/var/task`), and sends
 * the API's handler a GET for each path (an API Gateway HTTP API event).
 */
function initialise(
  dir: string,
  paths: readonly string[],
): Promise<{ ok: boolean; error?: string; statuses?: number[]; bodies?: string[] }> {
  const script = `
    try {
      const module = await import(${JSON.stringify(join(dir, "index.mjs"))});
      const statuses = [], bodies = [];
      for (const path of ${JSON.stringify(paths)}) {
        const event = { version: "2.0", routeKey: "$default", rawPath: path, rawQueryString: "", headers: { host: "api.example" },
          requestContext: { http: { method: "GET", path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "test" }, stage: "$default" },
          isBase64Encoded: false };
        const answer = await module.handler(event, { getRemainingTimeInMillis: () => 29000, awsRequestId: "r", functionName: "api" });
        statuses.push(answer.statusCode);
        bodies.push(answer.isBase64Encoded ? "" : String(answer.body ?? "").slice(0, 4000));
      }
      process.stdout.write("\\nRESULT " + JSON.stringify({ ok: typeof module.handler === "function", statuses, bodies }) + "\\n");
    } catch (error) {
      process.stdout.write("\\nRESULT " + JSON.stringify({ ok: false, error: String(error?.message ?? error).slice(0, 300) }) + "\\n");
    }
    process.stdout.write("", () => process.exit(0));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
      cwd: dir,
      env: { PATH: process.env.PATH, LAMBDA_TASK_ROOT: dir, AWS_REGION: "us-east-1", SIMROOT_FEED_KMS_KEY_ID: "alias/test" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.once("error", reject);
    // The function logs to stdout too (one JSON line per request): the result is the line marked RESULT.
    child.once("close", () => {
      const line = out.split("\n").find((candidate) => candidate.startsWith("RESULT "));
      resolve(line ? JSON.parse(line.slice("RESULT ".length)) : { ok: false, error: `no result: ${out.slice(0, 300)}` });
    });
  });
}
