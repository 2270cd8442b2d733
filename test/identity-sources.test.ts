/**
 * Sources, their credentials and tenants change through the ledger: each change is an audit
 * record (without secrets), and a rotation stops the old credentials at once on the instance
 * that rotated them.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTenantWithAdminKey, noteIngest } from "@simroot/core";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const body = JSON.stringify([
  {
    type: "device.reachability-changed",
    dedupeKey: "r1",
    occurredAt: "2026-11-22T06:00:00Z",
    device: { imsi: "208019990000001" },
    sourceType: "x",
    data: { reachable: true },
  },
]);

describe("sources and tenants through the ledger", () => {
  it("audits a source's creation and every rotation of its credentials, never the secrets", async () => {
    const tenant = await tenantClient(runtime);
    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    const rotated = (await tenant.call("POST", `/v1/sources/${source.id}/rotate`, {})).json;
    expect(rotated.credentials.webhookSecret).not.toBe(credentials.webhookSecret);
    const audit = (await tenant.call("GET", `/v1/audit?subject=${source.id}`)).json.items;
    expect(audit.map((record: { action: string }) => record.action)).toEqual(["source.created", "source.credentials-rotated"]);
    const text = JSON.stringify(audit);
    expect(text).not.toContain(credentials.webhookSecret);
    expect(text).not.toContain(rotated.credentials.webhookSecret);
    expect((await tenant.call("GET", "/v1/audit/verify")).json).toMatchObject({ valid: true });
  });

  it("stops the old credentials at once on the instance that rotated them, even when they were just used", async () => {
    const tenant = await tenantClient(runtime);
    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    const post = (secret: string) =>
      runtime.app.request(source.ingestPath, { method: "POST", headers: standardWebhookHeaders(secret, body), body });
    expect((await post(credentials.webhookSecret)).status).toBe(202); // now cached on this instance
    const rotated = (await tenant.call("POST", `/v1/sources/${source.id}/rotate`, {})).json;
    expect((await post(credentials.webhookSecret)).status).toBe(401);
    expect((await post(rotated.credentials.webhookSecret)).status).toBe(202);
    await runtime.settled();
  });

  it("keeps an eim source's trust anchors across a rotation that gives none", async () => {
    const tenant = await tenantClient(runtime);
    const { createTestPki } = await import("../packages/core/src/ingest/adapters/eim-pki.test-support.ts");
    const anchor = createTestPki().ci.pem;
    const { source } = (await tenant.call("POST", "/v1/sources", { name: "eIM", format: "eim", credentials: { trustAnchors: [anchor] } }))
      .json;
    const rotated = (await tenant.call("POST", `/v1/sources/${source.id}/rotate`, {})).json;
    expect(rotated.credentials.trustAnchors).toEqual([anchor]);
  });

  it("never puts back trust anchors a concurrent rotation replaced (a compromised root dropped by another admin)", async () => {
    const { createTestPki } = await import("../packages/core/src/ingest/adapters/eim-pki.test-support.ts");
    const compromised = createTestPki();
    const replacement = createTestPki();
    const tenant = await tenantClient(runtime, "source-rotate-race");
    const created = await tenant.call("POST", "/v1/sources", {
      name: "eIM",
      format: "eim",
      credentials: { trustAnchors: [compromised.ci.pem] },
    });
    expect(created.status, created.text).toBe(201);
    const id = created.json.source.id as string;
    // A rotation for a new bearer token only (no anchors) reads the source; another admin, on another instance, then
    // replaces the anchors; only then does the first rotation write.
    const db = runtime.ports.db;
    const send = db.send.bind(db);
    let concurrent: Awaited<ReturnType<typeof tenant.call>> | undefined;
    let armed = true;
    db.send = (async (command: { input?: { Key?: { sk?: unknown } } }, ...rest: unknown[]) => {
      const result = await send(command as never, ...(rest as []));
      if (armed && command.constructor.name === "GetCommand" && command.input?.Key?.sk === "source") {
        armed = false;
        concurrent = await tenant.call("POST", `/v1/sources/${id}/rotate`, { credentials: { trustAnchors: [replacement.ci.pem] } });
      }
      return result;
    }) as typeof db.send;
    let rotated: Awaited<ReturnType<typeof tenant.call>>;
    try {
      rotated = await tenant.call("POST", `/v1/sources/${id}/rotate`);
    } finally {
      db.send = send;
    }
    expect(concurrent?.status, concurrent?.text).toBe(200);
    // Refused (the credentials changed since it read them), never carrying the compromised root back.
    expect([rotated.status, rotated.json.type]).toEqual([409, "urn:simroot:problem:store.conflict"]);
    const source = await tenant.call("POST", `/v1/sources/${id}/rotate`);
    expect(source.json.credentials.trustAnchors).toEqual([replacement.ci.pem]);
  });

  it("refuses credentials over 1 KiB and trust anchors over 64 KiB with 400, creating and changing nothing (review 80)", async () => {
    const { createTestPki } = await import("../packages/core/src/ingest/adapters/eim-pki.test-support.ts");
    const tenant = await tenantClient(runtime, "source-credential-bounds");
    const long = (length: number) => "k".repeat(length);
    const secretOf = (length: number) => `whsec_${"A".repeat(length - "whsec_".length)}`;
    const given = (length: number) =>
      [
        ["camara", { bearerToken: long(length) }, "bearerToken"],
        ["datastreamer", { basicUser: long(length) }, "basicUser"],
        ["datastreamer", { basicPassword: long(length) }, "basicPassword"],
        ["supersim", { twilioAuthToken: long(length) }, "twilioAuthToken"],
        ["supersim", { twilioAuthToken: long(32), twilioSharedKeySecret: long(length) }, "twilioSharedKeySecret"],
        ["simroot", { webhookSecret: secretOf(length) }, "webhookSecret"],
      ] as const;
    for (const [format, credentials] of given(1024)) {
      const created = await tenant.call("POST", "/v1/sources", { name: "at the bound", format, credentials });
      expect([format, created.status], created.text).toEqual([format, 201]);
    }
    const before = (await tenant.call("GET", "/v1/sources?limit=100")).json.items.length;
    // 1 KiB and a character; and 500 KB, which made the source's item too large for DynamoDB (a 500 before).
    for (const length of [1025, 500_000]) {
      for (const [format, credentials, field] of given(length)) {
        const refused = await tenant.call("POST", "/v1/sources", { name: "over the bound", format, credentials });
        expect([format, field, length, refused.status, refused.headers.get("content-type")], refused.text.slice(0, 300)).toEqual([
          format,
          field,
          length,
          400,
          "application/problem+json",
        ]);
        expect(refused.json.errors.map((error: { path: string }) => error.path)).toContain(`credentials.${field}`);
      }
    }
    // Rotation takes the same credentials.
    const { source } = (await tenant.call("POST", "/v1/sources", { name: "rotated", format: "camara" })).json;
    const rotation = await tenant.call("POST", `/v1/sources/${source.id}/rotate`, { credentials: { bearerToken: long(500_000) } });
    expect(rotation.status).toBe(400);
    expect((await tenant.call("GET", `/v1/sources/${source.id}`)).json.credentialsRotatedAt).toBe(source.credentialsRotatedAt);

    // 20 anchors of 20,000 characters, created with an Idempotency-Key (as the CLI creates sources): the sealed answer
    // was too large for DynamoDB, a 500 once the source existed. 4 of 16,385 (64 KiB and 4 characters together) and
    // text that is not PEM's printable ASCII (a NUL takes 6 bytes as JSON) are refused too.
    const pem = createTestPki().ci.pem;
    const padded = (length: number) => `${pem}${"#".repeat(length - pem.length)}`;
    for (const trustAnchors of [Array(20).fill(padded(20_000)), Array(4).fill(padded(16_385)), [`${pem}\u0000`]]) {
      const refused = await tenant.call(
        "POST",
        "/v1/sources",
        { name: "anchors", format: "eim", credentials: { trustAnchors } },
        { "idempotency-key": `anchors-${trustAnchors.length}-${trustAnchors[0].length}` },
      );
      expect(refused.status, refused.text.slice(0, 300)).toBe(400);
      expect(refused.json.errors.map((error: { path: string }) => error.path.replace(/\.\d+$/, ""))).toContain("credentials.trustAnchors");
    }
    const atBound = await tenant.call(
      "POST",
      "/v1/sources",
      {
        name: "anchors",
        format: "eim",
        credentials: { trustAnchors: Array(4).fill(padded(16_384)) },
      },
      { "idempotency-key": "anchors-at-bound" },
    );
    expect(atBound.status, atBound.text.slice(0, 300)).toBe(201);
    expect((await tenant.call("GET", "/v1/sources?limit=100")).json.items.length).toBe(before + 2);
  });

  it("deletes a source: its sender is refused at once, its secrets and health are gone, and the deletion is audited", async () => {
    const tenant = await tenantClient(runtime, "source-delete");
    const other = await tenantClient(runtime, "source-delete-other");
    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    const kept = (await tenant.call("POST", "/v1/sources", { name: "kept", format: "simroot" })).json.source;
    const post = () =>
      runtime.app.request(source.ingestPath, { method: "POST", headers: standardWebhookHeaders(credentials.webhookSecret, body), body });
    expect((await post()).status).toBe(202); // cached on this instance, and counted in the source's health
    expect((await tenant.call("GET", "/v1/source-health")).json.items.map((h: { sourceId: string }) => h.sourceId)).toContain(source.id);
    // Another tenant's admin cannot delete it, nor learn that it exists; an operator of its own tenant may not either.
    expect((await other.call("DELETE", `/v1/sources/${source.id}`)).status).toBe(404);
    const operator = (await tenant.call("POST", "/v1/keys", { name: "ops", role: "operator" })).json.token as string;
    expect((await call(runtime, operator, "DELETE", `/v1/sources/${source.id}`)).status).toBe(403);

    const deleted = await tenant.call("DELETE", `/v1/sources/${source.id}`);
    expect(deleted.status, deleted.text).toBe(200);
    expect(deleted.json).toMatchObject({ id: source.id, deletedAt: expect.any(String) });
    expect((await post()).status).toBe(401);
    expect((await tenant.call("GET", `/v1/sources/${source.id}`)).status).toBe(404);
    expect((await tenant.call("DELETE", `/v1/sources/${source.id}`)).status).toBe(404);
    expect((await tenant.call("POST", `/v1/sources/${source.id}/rotate`, {})).status).toBe(404);
    const listed = (await tenant.call("GET", "/v1/sources")).json.items.map((s: { id: string }) => s.id);
    expect(listed).toEqual([kept.id]);
    expect((await tenant.call("GET", "/v1/source-health")).json.items.map((h: { sourceId: string }) => h.sourceId)).not.toContain(
      source.id,
    );
    // The stored item keeps who it was and when it went, not the secrets.
    const { Item } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.control, Key: { pk: `SRC#${source.id}`, sk: "source" }, ConsistentRead: true }),
    );
    expect(Item).toMatchObject({ id: source.id, deletedAt: deleted.json.deletedAt });
    expect(Item?.credentials).toBeUndefined();
    expect(JSON.stringify(Item)).not.toContain(credentials.webhookSecret);
    const audit = (await tenant.call("GET", `/v1/audit?subject=${source.id}`)).json.items;
    expect(audit.map((record: { action: string }) => record.action)).toEqual(["source.created", "source.deleted"]);
    expect(JSON.stringify(audit)).not.toContain(credentials.webhookSecret);
    expect((await tenant.call("GET", "/v1/audit/verify")).json).toMatchObject({ valid: true });
    await runtime.settled();
  });

  it("writes no credentials into a source deleted while a rotation of it was under way (review 154)", async () => {
    const tenant = await tenantClient(runtime, "source-rotate-delete");
    const { source } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    // The rotation reads the source; another admin deletes it (another instance); only then does the rotation write.
    const db = runtime.ports.db;
    const send = db.send.bind(db);
    let deleted: Awaited<ReturnType<typeof tenant.call>> | undefined;
    let armed = true;
    db.send = (async (command: { input?: { Key?: { sk?: unknown } } }, ...rest: unknown[]) => {
      const result = await send(command as never, ...(rest as []));
      if (armed && command.constructor.name === "GetCommand" && command.input?.Key?.sk === "source") {
        armed = false;
        deleted = await tenant.call("DELETE", `/v1/sources/${source.id}`);
      }
      return result;
    }) as typeof db.send;
    let rotated: Awaited<ReturnType<typeof tenant.call>>;
    try {
      rotated = await tenant.call("POST", `/v1/sources/${source.id}/rotate`);
    } finally {
      db.send = send;
    }
    expect(deleted?.status, deleted?.text).toBe(200);
    expect(rotated.status, rotated.text).toBe(409);
    const { Item } = await db.send(
      new GetCommand({ TableName: runtime.ports.tables.control, Key: { pk: `SRC#${source.id}`, sk: "source" }, ConsistentRead: true }),
    );
    expect(Item?.deletedAt).toBeDefined();
    expect(Item?.credentials).toBeUndefined();
    const audit = (await tenant.call("GET", `/v1/audit?subject=${source.id}`)).json.items;
    expect(audit.map((record: { action: string }) => record.action)).toEqual(["source.created", "source.deleted"]);
  });

  it("keeps a deleted source out of the health, even counted by an instance that still had it cached (review 154)", async () => {
    const tenant = await tenantClient(runtime, "source-delete-health");
    const { source } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    expect((await tenant.call("DELETE", `/v1/sources/${source.id}`)).status).toBe(200);
    // Another instance accepted a request within its 5 s of cache, and counts it after the deletion.
    await noteIngest(runtime.ports, tenant.tenant.id, source.id, { accepted: 1, rejected: 0 });
    const health = (await tenant.call("GET", "/v1/source-health")).json.items.map((h: { sourceId: string }) => h.sourceId);
    expect(health).not.toContain(source.id);
  });

  it("audits a tenant's creation as the first record of its own trail, naming who created it", async () => {
    const platform = await createTenantWithAdminKey(runtime.ports, "platform", { pk: `bootstrap-${Date.now()}`, sk: "bootstrap" });
    const created = await call(runtime, platform.token, "POST", "/v1/tenants", { name: "customer" });
    expect(created.status).toBe(201);
    const audit = (await call(runtime, created.json.token, "GET", "/v1/audit")).json.items;
    expect(audit[0]).toMatchObject({ action: "tenant.created", seq: 1 });
    expect(audit[0].actor).toContain(platform.tenant.id);
    expect((await call(runtime, platform.token, "GET", "/v1/audit")).json.items[0]).toMatchObject({
      action: "tenant.created",
      actor: "system:bootstrap",
    });
  });
});
