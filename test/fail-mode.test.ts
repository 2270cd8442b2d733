/**
 * One fail mode: the tenant settings show and change the enforcement settings' fail mode (one
 * stored value), and a PEP that follows deltas follows every change of it, whichever route made it.
 */
import { createPublicKey } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { policySetOf } from "@simroot/pep/engine";
import { PepState } from "@simroot/pep/state";
import { FeedSync } from "@simroot/pep/sync";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

describe("the fail mode", () => {
  it("is one value, carried in the feed and followed by a PEP through deltas, whichever route changed it", async () => {
    const tenant = await tenantClient(runtime, "failmode");
    const pep = (await tenant.call("POST", "/v1/keys", { name: "edge", role: "pep" })).json.token as string;
    const publicKey = createPublicKey((await call(runtime, pep, "GET", "/v1/feed/keys")).json.keys[0].publicKeyPem);
    const patch = async (settings: Record<string, unknown>) => {
      const etag = (await tenant.call("GET", "/v1/tenant")).headers.get("etag")!;
      expect((await tenant.call("PATCH", "/v1/tenant/settings", settings, { "if-match": etag })).status).toBe(200);
    };
    const put = async (failMode: string) => {
      const etag = (await tenant.call("GET", "/v1/enforcement")).headers.get("etag")!;
      expect((await tenant.call("PUT", "/v1/enforcement", { quarantineDestinations: [], failMode }, { "if-match": etag })).status).toBe(
        200,
      );
    };
    const shown = async () => ({
      tenant: (await tenant.call("GET", "/v1/tenant")).json.settings.failMode,
      enforcement: (await tenant.call("GET", "/v1/enforcement")).json.failMode,
    });

    await patch({ failMode: "open" });
    expect(await shown()).toEqual({ tenant: "open", enforcement: "open" });
    const state = new PepState(tenant.tenant.id);
    const sync = new FeedSync({
      url: "http://cp.test",
      apiKey: pep,
      publicKeys: [publicKey],
      state,
      waitSeconds: 0,
      fetch: ((input: string, init?: RequestInit) => runtime.app.request(input, init)) as typeof fetch,
    });
    await sync.step();
    expect(policySetOf(state).settings.failMode).toBe("open");

    // Back to closed through the tenant settings: before, the PEP kept the snapshot's "open" (its enforcement entry won).
    await patch({ failMode: "closed" });
    expect(await sync.step()).toBe("delta");
    expect(policySetOf(state).settings.failMode).toBe("closed");
    expect(await shown()).toEqual({ tenant: "closed", enforcement: "closed" });

    // Through the enforcement settings: the tenant settings show the same value.
    await put("open");
    expect(await sync.step()).toBe("delta");
    expect(policySetOf(state).settings.failMode).toBe("open");
    expect(await shown()).toEqual({ tenant: "open", enforcement: "open" });

    // Another tenant setting changed: the fail mode does not move.
    await patch({ allowedCountries: ["FR"] });
    expect(await sync.step()).toBe("delta");
    expect(policySetOf(state).settings.failMode).toBe("open");
    expect(await shown()).toEqual({ tenant: "open", enforcement: "open" });
    expect(sync.stats.snapshots).toBe(1);
  });
});
