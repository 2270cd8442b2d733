/**
 * Credentials a source is created or rotated with are ones a sender can present (review 129): a Basic user-id with a
 * colon (RFC 7617: the first colon ends it) or a bearer token with a space (`Authorization: Bearer` carries one run of
 * visible characters) were accepted, shown once, and every delivery made with them was refused 401, an answer that
 * reads as "no such source".
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const record = JSON.stringify({
  id: 1290101,
  timestamp: new Date().toISOString(),
  event_type: { id: 9, description: "SIM suspension" },
  sim: { iccid: "89490200001291290101" },
});

describe("source credentials", () => {
  it("are refused, and nothing created or rotated, when no sender could present them", async () => {
    const tenant = await tenantClient(runtime, "credentials-unusable");
    const refusals = [
      { format: "datastreamer", credentials: { basicUser: "ops:1nce", basicPassword: "correct-horse-battery" }, path: "basicUser" },
      { format: "datastreamer", credentials: { basicUser: "ops", basicPassword: "correct\nhorse-battery" }, path: "basicPassword" },
      { format: "camara", credentials: { bearerToken: "sink credential 0123456789" }, path: "bearerToken" },
    ];
    for (const { format, credentials, path } of refusals) {
      const created = await tenant.call("POST", "/v1/sources", { name: "sender", format, credentials });
      expect(created.status, created.text).toBe(400);
      expect(created.headers.get("content-type")).toBe("application/problem+json");
      expect(JSON.stringify(created.json.errors ?? created.json.issues)).toContain(path);
    }
    expect((await tenant.call("GET", "/v1/sources")).json.items).toEqual([]);

    const source = await tenant.call("POST", "/v1/sources", { name: "1nce", format: "datastreamer" });
    expect(source.status, source.text).toBe(201);
    const rotated = await tenant.call("POST", `/v1/sources/${source.json.source.id}/rotate`, {
      credentials: { basicUser: "ops:1nce", basicPassword: "correct-horse-battery" },
    });
    expect(rotated.status, rotated.text).toBe(400);
    // The generated credentials still work.
    const { basicUser, basicPassword } = source.json.credentials;
    const response = await runtime.app.request(source.json.source.ingestPath, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`${basicUser}:${basicPassword}`).toString("base64")}`,
        "content-type": "application/json",
      },
      body: record,
    });
    expect(response.status, await response.text()).toBe(202);
  });

  it("given with visible characters, a colon in a password included, authenticate their sender", async () => {
    const tenant = await tenantClient(runtime, "credentials-given");
    const created = await tenant.call("POST", "/v1/sources", {
      name: "1nce",
      format: "datastreamer",
      credentials: { basicUser: "ops-1nce", basicPassword: "correct:horse battery" },
    });
    expect(created.status, created.text).toBe(201);
    const response = await runtime.app.request(created.json.source.ingestPath, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from("ops-1nce:correct:horse battery").toString("base64")}`,
        "content-type": "application/json",
      },
      body: record,
    });
    expect(response.status, await response.text()).toBe(202);
  });
});
