/**
 * The request schemas are exactly as strict as the server (issue 13 item 1): an integrator who
 * validates a body against `/openapi.json` with a standard JSON Schema validator (Ajv, draft
 * 2020-12 as OpenAPI 3.1 uses) gets the server's verdict. The only checks JSON Schema cannot
 * state, check digits (EID mod 97, IMEI Luhn), are named in the field's description.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

/** What is read of `/openapi.json`: the operations' request bodies and the component schemas they refer to. */
interface ApiDocument {
  readonly paths: Record<
    string,
    Record<string, { readonly requestBody: { readonly content: Record<string, { readonly schema: unknown }> } }>
  >;
  readonly components: { readonly schemas: Record<string, unknown> };
}

/** Inlines `#/components/schemas/...` references so the validator needs nothing but the schema. */
function resolved(node: unknown, components: Record<string, unknown>): unknown {
  if (Array.isArray(node)) return node.map((item) => resolved(item, components));
  if (!node || typeof node !== "object") return node;
  const ref = (node as { $ref?: string }).$ref;
  if (ref?.startsWith("#/components/schemas/")) return resolved(components[ref.slice("#/components/schemas/".length)], components);
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, resolved(value, components)]));
}

describe("the device registration schema", () => {
  it("accepts and refuses what the server accepts and refuses", async () => {
    const doc = (await (await runtime.app.request("/openapi.json")).json()) as ApiDocument;
    const schema = resolved(doc.paths["/v1/devices"]!.post!.requestBody.content["application/json"]!.schema, doc.components.schemas);
    const validate = new Ajv2020({ strict: false, allErrors: true }).compile(schema as object);
    const tenant = await tenantClient(runtime, "strictness");
    let n = 0;
    const imsi = () => `2080155500${String(++n).padStart(5, "0")}`;
    const bodies: [string, Record<string, unknown>][] = [
      ["an IMSI", { imsi: imsi() }],
      ["ICCIDs", { iccids: ["8944500102198304826"] }],
      ["an MSISDN without +", { imsi: imsi(), msisdn: "447700900123" }],
      ["no SIM identity", { name: "meter" }],
      ["an empty ICCID list only", { iccids: [] }],
      ["the same ICCID twice", { iccids: ["8944500102198304834", "8944500102198304834"] }],
      ["an MSISDN with letters", { imsi: imsi(), msisdn: "+44abc" }],
      ["an unknown field", { imsi: imsi(), colour: "red" }],
      ["a short EID", { eid: "8904903212345" }],
    ];
    for (const [what, body] of bodies) {
      const documented = validate(body);
      const answer = await tenant.call("POST", "/v1/devices", body);
      expect([what, answer.status === 201], JSON.stringify(answer.json)).toEqual([what, documented]);
    }
    // The one check the schema cannot state, named where an integrator reads it.
    expect(JSON.stringify(schema)).toContain("mod 97 is 1");
  });

  it("states the exactly-one and at-least-one rules of the other requests as the server applies them", async () => {
    const doc = (await (await runtime.app.request("/openapi.json")).json()) as ApiDocument;
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const bodyOf = (path: string, method: string) =>
      ajv.compile(resolved(doc.paths[path]![method]!.requestBody.content["application/json"]!.schema, doc.components.schemas) as object);
    const tenant = await tenantClient(runtime, "strictness-others");
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208015550099999" })).json;
    // Each body, judged by the documented schema and by the server.
    const patch = {
      validate: bodyOf("/v1/devices/{id}", "patch"),
      send: (body: unknown) => tenant.call("PATCH", `/v1/devices/${device.id}`, body, { "if-match": `"${device.revision}"` }),
    };
    const preview = {
      validate: bodyOf("/v1/policies/preview", "post"),
      send: (body: unknown) => tenant.call("POST", "/v1/policies/preview", body),
    };
    const cases: [string, typeof patch, Record<string, unknown>][] = [
      ["an empty device change", patch, {}],
      ["a preview with both upsert and remove", preview, { remove: "a", upsert: {} }],
      ["a preview with neither", preview, {}],
    ];
    for (const [what, route, body] of cases) {
      expect([what, route.validate(body), (await route.send(body)).status]).toEqual([what, false, 400]);
    }
    // A destination names exactly one of fqdn and cidr.
    const destination = ajv.compile(resolved(doc.components.schemas.Destination, doc.components.schemas) as object);
    expect(destination({ fqdn: "a.example.com", protocol: "tcp" })).toBe(true);
    expect(destination({ fqdn: "a.example.com", cidr: "10.0.0.0/8", protocol: "tcp" })).toBe(false);
    expect(destination({ protocol: "tcp" })).toBe(false);
  });
});

describe("every JSON request body", () => {
  it("refuses fields it does not know, as the OpenAPI document says (additionalProperties: false), but a vendor's", async () => {
    const doc = (await (await runtime.app.request("/openapi.json")).json()) as ApiDocument;
    const open: string[] = [];
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const schema = resolved(operation.requestBody?.content?.["application/json"]?.schema, doc.components.schemas) as
          | { type?: string; additionalProperties?: unknown }
          | undefined;
        if (schema?.type === "object" && schema.additionalProperties !== false) open.push(`${method.toUpperCase()} ${path}`);
      }
    }
    // Cloudflare's device posture request is the vendor's, which it may add fields to: read leniently.
    expect(open).toEqual(["POST /v1/integrations/cloudflare/posture"]);
  });

  it("of a device action: an unknown field is refused and the device is left as it was; a missing reason says why", async () => {
    const tenant = await tenantClient(runtime, "strict-actions");
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208015550099999" })).json;
    const refused = await tenant.call("POST", `/v1/devices/${device.id}/suspend`, { reason: "maintenance", ttl: "1h" });
    expect([refused.status, refused.headers.get("content-type")]).toEqual([400, "application/problem+json"]);
    // The unknown field is named where a client reads which field is wrong (it was "(body)": review 54).
    expect(refused.json.errors.map((error: { path: string }) => error.path)).toEqual(["ttl"]);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.state).toBe("active");
    const unexplained = await tenant.call("POST", `/v1/devices/${device.id}/suspend`, {});
    expect([unexplained.status, JSON.stringify(unexplained.json)]).toEqual([400, expect.stringContaining("say why")]);
  });
});
