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
  it("moves the tenant's ETag when PUT /v1/enforcement changes it: settings sent back as read before are refused", async () => {
    const tenant = await tenantClient(runtime, "failmode-etag");
    const before = await tenant.call("GET", "/v1/tenant");
    const put = await tenant.call("PUT", "/v1/enforcement", { quarantineDestinations: [], failMode: "open" }, { "if-match": '"0"' });
    expect(put.status, put.text).toBe(200);
    const after = await tenant.call("GET", "/v1/tenant");
    expect(after.json.settings.failMode).toBe("open");
    expect(after.headers.get("etag")).not.toBe(before.headers.get("etag"));
    // A client that read the settings before the PUT sends them back: refused, the fail mode stays open.
    const stale = await tenant.call("PATCH", "/v1/tenant/settings", before.json.settings, { "if-match": before.headers.get("etag")! });
    expect(stale.status).toBe(412);
    const fresh = await tenant.call("PATCH", "/v1/tenant/settings", { imeiLock: false }, { "if-match": after.headers.get("etag")! });
    expect(fresh.status, fresh.text).toBe(200);
    expect(fresh.json.settings).toMatchObject({ imeiLock: false, failMode: "open" });
    expect(fresh.headers.get("etag")).toBe((await tenant.call("GET", "/v1/tenant")).headers.get("etag"));
  });

  it("is not put back by a settings change that does not name it, when PUT /v1/enforcement changed it meanwhile", async () => {
    // Another operator switches to fail-closed while the PATCH is in flight: just before the PATCH's first, second or
    // third read of the enforcement settings (a PATCH built from an earlier read than its write's condition put the
    // fail mode it read first back). Whatever the interleaving, the PATCH lands or is refused; it never reverts.
    let raced = 0;
    for (const before of [1, 2, 3]) {
      const tenant = await tenantClient(runtime, `failmode-race-${before}`);
      const opened = await tenant.call("PUT", "/v1/enforcement", { quarantineDestinations: [], failMode: "open" }, { "if-match": '"0"' });
      expect(opened.status, opened.text).toBe(200);
      const etag = (await tenant.call("GET", "/v1/tenant")).headers.get("etag")!;
      const db = runtime.ports.db;
      const send = db.send.bind(db);
      let reads = 0;
      let concurrent: Awaited<ReturnType<typeof tenant.call>> | undefined;
      db.send = (async (command: { input?: { Key?: { sk?: unknown } } }, ...rest: unknown[]) => {
        if (command.constructor.name === "GetCommand" && command.input?.Key?.sk === "enforcement" && ++reads === before) {
          concurrent = await tenant.call(
            "PUT",
            "/v1/enforcement",
            { quarantineDestinations: [], failMode: "closed" },
            { "if-match": '"1"' },
          );
        }
        return send(command as never, ...(rest as []));
      }) as typeof db.send;
      let patched: Awaited<ReturnType<typeof tenant.call>>;
      try {
        patched = await tenant.call("PATCH", "/v1/tenant/settings", { imeiLock: false }, { "if-match": etag });
      } finally {
        db.send = send;
      }
      if (concurrent === undefined) continue; // the PATCH read the enforcement settings fewer times
      raced++;
      expect([before, concurrent.status]).toEqual([before, 200]);
      expect([before, [200, 412].includes(patched.status)]).toEqual([before, true]);
      // The last change that named the fail mode said closed; the PATCH named only imeiLock.
      expect([before, (await tenant.call("GET", "/v1/enforcement")).json.failMode]).toEqual([before, "closed"]);
    }
    expect(raced).toBeGreaterThanOrEqual(2);
  });

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
