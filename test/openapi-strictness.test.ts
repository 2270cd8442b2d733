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
