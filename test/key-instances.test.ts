/**
 * A key changed through one instance, while another still holds its record for the key cache's second (review 136):
 * the old secret changes nothing lasting there (a self-rotation minted the thief a lasting token, a revoked platform
 * admin made a tenant and its admin token), and the new secret is not refused there.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { createTenantWithAdminKey } from "@simroot/core";
import { call, tenantClient, twoInstances, type TestRuntime } from "./support/runtime.ts";

const instances = twoInstances("keyinstances");
let a: TestRuntime;
let b: TestRuntime;
beforeAll(() => void ({ a, b } = instances));

describe("a key changed through another instance", () => {
  it("answers the new token of a key rotated through another instance, not 401 until the old record's cache entry runs out", async () => {
    const tenant = await tenantClient(a, "keys-new-token");
    const pep = (await tenant.call("POST", "/v1/keys", { name: "site-a", role: "pep" })).json;
    // The PEP polls through B: B caches its key.
    expect((await call(b, pep.token, "GET", "/v1/feed")).status).toBe(200);
    // The admin rotates it through A and hands the PEP the new token, which it uses at once (through B).
    const rotated = await tenant.call("POST", `/v1/keys/${pep.key.keyId}/rotate`);
    expect(rotated.status).toBe(200);
    const first = await call(b, rotated.json.token, "GET", "/v1/feed");
    expect(first.status, first.text.slice(0, 200)).toBe(200);
  }, 30_000);

  it("refuses a platform admin key revoked through another instance the creation of a tenant (and its lasting admin token)", async () => {
    const platform = await createTenantWithAdminKey(a.ports, "keys-platform", { pk: `keys-platform-${Date.now()}`, sk: "guard" });
    const call = (runtime: TestRuntime, token: string, method: string, path: string, body?: unknown) =>
      runtime.app.request(path, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    const leaked = (await (await call(a, platform.token, "POST", "/v1/keys", { name: "leaked", role: "admin" })).json()) as {
      key: { keyId: string };
      token: string;
    };
    // B authenticates the leaked key: it caches it.
    expect((await call(b, leaked.token, "GET", "/v1/keys")).status).toBe(200);
    // The platform's admin revokes it through A.
    expect((await call(a, platform.token, "DELETE", `/v1/keys/${leaked.key.keyId}`)).status).toBe(200);
    // Within B's 1 s, the revoked key creates a tenant: its admin token would outlive the revocation.
    const created = await call(b, leaked.token, "POST", "/v1/tenants", { name: "foothold" });
    expect(created.status).toBe(401);
  }, 30_000);

  it("cannot rotate its own key through an instance that still caches it, and mint itself a lasting token", async () => {
    const tenant = await tenantClient(a, "keys-self-rotate");
    // A second admin (the one responding to the leak) and the leaked admin key K = tenant.keyId.
    const responder = (await tenant.call("POST", "/v1/keys", { name: "responder", role: "admin" })).json;
    // Instance B authenticates K's (leaked) secret: it caches the key record.
    expect((await call(b, tenant.token, "GET", "/v1/keys")).status).toBe(200);
    // Through A, the responder rotates K: the leaked secret must stop working.
    const rotated = await call(a, responder.token, "POST", `/v1/keys/${tenant.keyId}/rotate`);
    expect(rotated.status).toBe(200);
    // Within B's 1 s, the leaked secret rotates K itself.
    const stolen = await call(b, tenant.token, "POST", `/v1/keys/${tenant.keyId}/rotate`);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // past every key cache
    const stolenStillWorks = stolen.status === 200 ? (await call(a, stolen.json.token, "GET", "/v1/keys")).status : stolen.status;
    const responderTokenWorks = (await call(a, rotated.json.token, "GET", "/v1/keys")).status;
    expect({ stolenRotation: stolen.status, stolenStillWorks, responderTokenWorks }).toEqual({
      stolenRotation: 401,
      stolenStillWorks: 401,
      responderTokenWorks: 200,
    });
  }, 30_000);
});
