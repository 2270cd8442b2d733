/**
 * The OpenAPI document as integrators' tools take it: validated by @readme/openapi-parser,
 * linted by Redocly (recommended rules, zero errors), turned into a client by openapi-typescript
 * with its default options and typechecked against an integrator's script; and held to what the
 * server does (operationIds, tags, If-Match, public routes, headers). Runs over every route,
 * so routes added later are held to it too.
 */
import { mkdtemp, rm, writeFile, copyFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { validate, compileErrors } from "@readme/openapi-parser";
import { createConfig, lintFromString } from "@redocly/openapi-core";
import openapiTS, { astToString, type OpenAPI3 } from "openapi-typescript";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../packages/api/src/app.ts";
import { documentOnlyOptions, openApiText } from "../packages/api/src/contracts.ts";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

const methods = ["get", "put", "post", "delete", "patch"] as const;

/** The served document, typed as far as these tests read it (the parser, the linter and the generator take all of it). */
interface Parameter {
  readonly $ref?: string;
  readonly in: string;
  readonly name: string;
  readonly required?: boolean;
}
interface Operation {
  readonly operationId: string;
  readonly summary?: string;
  readonly tags?: readonly string[];
  readonly parameters?: readonly Parameter[];
  readonly requestBody?: unknown;
  readonly security?: readonly unknown[];
  readonly responses: Readonly<Record<string, { readonly headers?: Readonly<Record<string, unknown>> }>>;
}
interface ApiDocument {
  readonly servers?: readonly unknown[];
  readonly tags: readonly { readonly name: string }[];
  readonly security: readonly unknown[];
  readonly paths: Readonly<Record<string, { readonly [method in (typeof methods)[number]]?: Operation }>>;
  readonly components: { readonly parameters: Readonly<Record<string, Parameter>> };
}

let runtime: TestRuntime;
let doc: ApiDocument;
beforeAll(async () => {
  runtime = await startTestRuntime();
  doc = (await call(runtime, undefined, "GET", "/openapi.json")).json;
});
afterAll(() => runtime.stop());

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    methods.filter((method) => item[method]).map((method) => ({ path, method, op: item[method]! })),
  );
const params = (op: Operation) => (op.parameters ?? []).map((p) => (p.$ref ? doc.components.parameters[p.$ref.split("/").pop()!]! : p));
const concrete = (path: string) => path.replace(/\{[^}]+\}/g, "x_1");

describe("the OpenAPI document", () => {
  it("served is the one the routes generate (after changing a route, run `npm run contracts`)", () => {
    expect(`${JSON.stringify(doc, null, 2)}\n`, "packages/api/openapi.json is stale: run `npm run contracts`").toBe(
      openApiText(createApp(documentOnlyOptions)),
    );
  });

  it("validates with @readme/openapi-parser", async () => {
    const result = await validate(structuredClone(doc) as unknown as Parameters<typeof validate>[0]);
    expect(result.valid ? "" : compileErrors(result)).toBe("");
  });

  it("has no Redocly lint error (recommended rules)", async () => {
    const config = await createConfig({ extends: ["recommended"] });
    const problems = await lintFromString({ source: JSON.stringify(doc), absoluteRef: "/openapi.json", config });
    const errors = problems
      .filter((problem) => problem.severity === "error")
      .map((problem) => `${problem.ruleId}: ${problem.message} at ${problem.location[0]?.pointer}`);
    expect(errors).toEqual([]);
  });

  it("names every operation uniquely, tags it with a declared tag and declares servers", () => {
    expect(doc.servers?.length).toBeGreaterThan(0);
    const declared = new Set(doc.tags.map((tag: { name: string }) => tag.name));
    const ids = new Set<string>();
    for (const { path, method, op } of operations()) {
      expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z0-9]+$/);
      expect(ids.has(op.operationId), op.operationId).toBe(false);
      ids.add(op.operationId);
      expect(op.tags?.length, `${method} ${path}`).toBeGreaterThan(0);
      for (const tag of op.tags!) expect(declared.has(tag), `${method} ${path} tag ${tag}`).toBe(true);
      expect(op.summary, `${method} ${path}`).toBeTruthy();
    }
  });

  it("declares If-Match required wherever the server answers 428 without it", async () => {
    const acme = await tenantClient(runtime);
    for (const { path, method, op } of operations().filter(({ method }) => method !== "get" && method !== "post")) {
      const response = await acme.call(method.toUpperCase(), concrete(path), method === "delete" ? undefined : {});
      const ifMatch = params(op).find((p) => p.in === "header" && p.name.toLowerCase() === "if-match");
      if (response.status === 428 || op.responses["428"]) {
        expect(ifMatch?.required, `${method} ${path}`).toBe(true);
        expect(op.responses["412"], `${method} ${path}`).toBeDefined();
        expect(op.responses["428"], `${method} ${path}`).toBeDefined();
      }
    }
  });

  it("declares the ETag wherever a write needs one in If-Match: on the resource's read, its creation and its writes (review 124)", async () => {
    // Webhook subscriptions, automation rules and the tenant's settings answered an ETag, and their PATCH and DELETE
    // refused a request without If-Match (428), but the document declared no ETag: an integrator's generated client
    // had no word of where the value comes from.
    const conditional = operations().filter(({ op }) =>
      params(op).some((p) => p.in === "header" && p.name.toLowerCase() === "if-match" && p.required),
    );
    expect(conditional.map(({ method, path }) => `${method} ${path}`)).toEqual(
      expect.arrayContaining(["patch /v1/webhooks/{id}", "delete /v1/automation/rules/{id}", "patch /v1/tenant/settings"]),
    );
    for (const { path } of conditional) {
      const item = doc.paths[path]!;
      for (const method of ["get", "put", "patch"] as const) {
        if (item[method]) expect(Object.keys(item[method]!.responses["200"]?.headers ?? {}), `${method} ${path}`).toContain("ETag");
      }
      const create = doc.paths[path.replace(/\/\{[^}]+\}$/, "")]?.post?.responses["201"];
      if (create && path.endsWith("}")) expect(Object.keys(create.headers ?? {}), `post ${path} (creation)`).toContain("ETag");
    }
    // And the server answers what the document says.
    const acme = await tenantClient(runtime);
    const pattern = { source: ["simroot"], "detail-type": ["device.quarantined"] };
    const webhook = await acme.call("POST", "/v1/webhooks", { url: "http://127.0.0.1:9/hook", pattern });
    const rule = await acme.call("POST", "/v1/automation/rules", {
      name: "r",
      pattern,
      actions: [{ type: "add-labels", labels: { w: "y" } }],
      dryRun: true,
    });
    expect([webhook.headers.get("etag"), rule.headers.get("etag")]).toEqual(['"1"', '"1"']);
    // A lookup answers the device with its ETag, for a later If-Match on it (review 127).
    await acme.call("POST", "/v1/devices", { imsi: "208011234512799" });
    const found = await acme.call("GET", "/v1/devices/lookup?imsi=208011234512799");
    expect([found.headers.get("etag"), Object.keys(doc.paths["/v1/devices/lookup"]!.get!.responses["200"]!.headers ?? {})]).toEqual([
      '"1"',
      expect.arrayContaining(["ETag"]),
    ]);
  });

  it("declares a route public exactly when it answers without credentials", async () => {
    for (const { path, op } of operations().filter(({ method, path }) => method === "get" && !path.includes("{"))) {
      const response = await call(runtime, undefined, "GET", path);
      const security = op.security ?? doc.security ?? [];
      expect([path, response.status === 401], `${path} answered ${response.status}`).toEqual([path, security.length > 0]);
    }
  });

  it("documents the protocol's headers and statuses", () => {
    for (const { path, method, op } of operations()) {
      const secured = (op.security ?? doc.security).length > 0 || path.startsWith("/v1/ingest/");
      for (const [status, response] of Object.entries(op.responses)) {
        expect(response.headers?.["X-Request-Id"], `${method} ${path} ${status}`).toBeDefined();
      }
      if (op.requestBody) expect(op.responses["413"], `${method} ${path}`).toBeDefined();
      // A PATCH that names only the values held changes nothing, and says so (the answer a client may otherwise misread).
      if (method === "patch")
        expect((op.responses["200"] as { description?: string }).description, `${method} ${path}`).toContain(
          "the same ETag, no new revision",
        );
      if (secured) expect(op.responses["401"], `${method} ${path}`).toBeDefined();
      if (secured && method === "post" && !path.startsWith("/v1/ingest/")) {
        expect(
          params(op).some((p) => p.name === "Idempotency-Key"),
          `${method} ${path}`,
        ).toBe(true);
        expect(op.responses["422"], `${method} ${path}`).toBeDefined();
      }
    }
    expect(doc.paths["/v1/devices"]!.post!.responses["201"]!.headers).toHaveProperty("Location");
    expect(doc.paths["/v1/devices/{id}"]!.get!.responses["200"]!.headers).toHaveProperty("ETag");
    expect(doc.paths["/v1/feed"]!.get!.responses["304"]!.headers).toHaveProperty("simroot-feed-head");
    expect(doc.paths["/v1/ingest/{sourceId}"]!.post!.security!.length).toBeGreaterThan(1);
    // Webhooks are deduplicated by their own ids (webhook-id, each event's key), not by Idempotency-Key, which the
    // document promised there and the route ignored (review 58).
    const ingest = doc.paths["/v1/ingest/{sourceId}"]!.post!;
    expect(params(ingest).some((p) => p.name === "Idempotency-Key")).toBe(false);
    expect([ingest.responses["422"], ingest.responses["202"]?.headers?.["Idempotent-Replayed"]]).toEqual([undefined, undefined]);
  });

  it("answers 415 to a body that is not JSON, as documented", async () => {
    const acme = await tenantClient(runtime);
    const response = await acme.call("POST", "/v1/devices", "imsi=1", { "content-type": "application/x-www-form-urlencoded" });
    expect(response.status).toBe(415);
    expect(doc.paths["/v1/devices"]!.post!.responses["415"]).toBeDefined();
    // On every write, one that takes no body too (review 142: `curl -X POST -d ''` on a rotation, its empty body labelled
    // a form, was answered a 415 the operation did not list).
    const answered: string[] = [];
    for (const { path, method, op } of operations().filter(({ method, path }) => method !== "get" && !path.startsWith("/v1/ingest/"))) {
      const refused = await acme.call(method.toUpperCase(), concrete(path), "", {
        "content-type": "application/x-www-form-urlencoded",
        "if-match": '"1"',
      });
      answered.push(`${method} ${path} ${refused.status}${op.responses[String(refused.status)] ? "" : " (not listed)"}`);
    }
    expect(answered.filter((answer) => !answer.endsWith(" 415"))).toEqual([]);
  });

  it("generates a client (openapi-typescript, default options) that typechecks an integrator's valid requests", async () => {
    const dir = await mkdtemp(join(tmpdir(), "simroot-integrator-"));
    try {
      await writeFile(join(dir, "generated-openapi.d.ts"), astToString(await openapiTS(structuredClone(doc) as unknown as OpenAPI3)));
      const script = join(dir, "integrator.ts");
      await copyFile(new URL("./fixtures/integrator.ts", import.meta.url), script);
      const program = ts.createProgram([script], {
        strict: true,
        noEmit: true,
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        target: ts.ScriptTarget.ES2022,
        allowImportingTsExtensions: true,
        skipLibCheck: true,
        typeRoots: [join(process.cwd(), "node_modules/@types")],
        baseUrl: process.cwd(),
        paths: { "openapi-fetch": [join(process.cwd(), "node_modules/openapi-fetch")] },
      });
      const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
      expect(diagnostics).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
