/**
 * Deploy day: a release replaces the Lambda functions one by one, so for a while code of two releases reads and writes
 * the same device items (review 140). An item a newer release wrote carries its stored form (`format`): code that does
 * not know that form refuses it loudly (a retryable 503, a fact left to be retried by the newer code) instead of
 * rewriting it without what it does not know. Likewise after a rollback to this code.
 */
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { applyOperatorEvent, decodeHistory, forgetDevice, ingestedEvent } from "@simroot/core";
import { deviceKey } from "@simroot/core/device/keys";
import { encodeHistory } from "@simroot/core/device/store";
import { apiKeyItemKey } from "@simroot/core/access/api-key";
import { tenantItemKey } from "@simroot/core/access/tenant-settings";
import { recordKey } from "@simroot/core/automation/record-key";
import { enforcementKey, policyItemKey } from "@simroot/core/policy/records";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

/** The device item's form this release writes (device/store.ts `deviceFormat`), and the next release's. */
const thisReleaseForm = 1;
const nextReleaseForm = 2;

const deviceItemOf = async (tenantId: string, deviceId: string) =>
  (
    await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.identity, Key: deviceKey(tenantId, deviceId), ConsistentRead: true }),
    )
  ).Item!;

/**
 * A registered device whose item is then rewritten as the next release would write it: its form raised, an attribute
 * and a history field this code does not know (as `receivedFacts` was to the release before b82f8df, whose fold
 * rewrote the history without it).
 */
async function deviceOfNextRelease(imsi: string) {
  const tenant = await tenantClient(runtime);
  const device = (await tenant.call("POST", "/v1/devices", { imsi, name: "meter" })).json;
  const item = await deviceItemOf(device.tenantId, device.id);
  const history = { ...decodeHistory(item.history), keptByNextRelease: ["a1b2c3d4e5f60718:core|k1"] };
  const written = { ...item, format: nextReleaseForm, grantsNextRelease: ["grt_1"], history: encodeHistory(history as never) };
  await runtime.ports.db.send(new PutCommand({ TableName: runtime.ports.tables.identity, Item: written }));
  // An instance of this release that had the device in its cache: the next release's write moved nothing it checks.
  forgetDevice(runtime.ports, device.tenantId, device.id);
  return { tenant, device, written };
}

describe("a device item of a newer release (review 140)", () => {
  it("is refused, not rewritten without what it does not know, by a change made through this release's API", async () => {
    const { tenant, device, written } = await deviceOfNextRelease("208011400000001");
    const patched = await tenant.call("PATCH", `/v1/devices/${device.id}`, { name: "renamed" }, { "if-match": `"${device.revision}"` });
    expect(patched.status).toBe(503);
    expect(patched.headers.get("content-type")).toBe("application/problem+json");
    expect(patched.json.type).toBe("urn:simroot:problem:store.newer_format");
    const after = await deviceItemOf(device.tenantId, device.id);
    expect(after.grantsNextRelease).toEqual(["grt_1"]);
    expect(after.name).toBe("meter");
    expect((decodeHistory(after.history) as unknown as Record<string, unknown>).keptByNextRelease).toEqual(
      (decodeHistory(written.history) as unknown as Record<string, unknown>).keptByNextRelease,
    );
  });

  it("is refused by this release's applier, which leaves the fact to be retried rather than folding it without what it does not know", async () => {
    const { device } = await deviceOfNextRelease("208011400000002");
    const ctx = { tenantId: device.tenantId, actor: "source:src_deploy", requestId: "req_deploy" };
    const fact = ingestedEvent(
      ctx,
      "src_deploy",
      "simroot",
      {
        type: "device.reachability-changed",
        dedupeKey: "deploy-day-1",
        occurredAt: new Date(Date.now() - 60_000).toISOString(),
        device: { imsi: "208011400000002" },
        sourceType: "test",
        data: { reachable: true, via: "data" },
      } as never,
      new Date(),
    );
    await expect(applyOperatorEvent(runtime.ports, fact)).rejects.toMatchObject({ code: "store.newer_format", kind: "unavailable" });
    const after = await deviceItemOf(device.tenantId, device.id);
    expect(after.grantsNextRelease).toEqual(["grt_1"]);
    expect(after.revision).toBe(device.revision);
    expect((decodeHistory(after.history) as unknown as Record<string, unknown>).keptByNextRelease).toBeDefined();
  });

  it("marks every device item this release writes with its form, so that an older release can tell", async () => {
    const tenant = await tenantClient(runtime);
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011400000003" })).json;
    const registered = await deviceItemOf(device.tenantId, device.id);
    expect(registered.format).toBe(thisReleaseForm);
    const patched = await tenant.call("PATCH", `/v1/devices/${device.id}`, { name: "renamed" }, { "if-match": `"${device.revision}"` });
    expect(patched.status).toBe(200);
    expect((await deviceItemOf(device.tenantId, device.id)).format).toBe(thisReleaseForm);
  });
});

describe("the API's word for a device item of a newer release", () => {
  it("documents the 503 on every device route that answers it, for integrators' generated clients (review 141)", async () => {
    // The device routes answered 503 store.newer_format during a deploy, and the OpenAPI document listed no 503 for
    // them: a generated client had no type for the answer, and an integrator no word that it is to be retried.
    const { tenant, device } = await deviceOfNextRelease("208011400000004");
    const doc = (await tenant.call("GET", "/openapi.json")).json as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    const routes: [method: string, path: string, documented: string, body?: unknown][] = [
      ["GET", `/v1/devices/${device.id}`, "/v1/devices/{id}"],
      ["GET", "/v1/devices", "/v1/devices"],
      ["GET", "/v1/devices/lookup?imsi=208011400000004", "/v1/devices/lookup"],
      ["GET", `/v1/devices/${device.id}/timeline`, "/v1/devices/{id}/timeline"],
      ["GET", `/v1/devices/${device.id}/sessions`, "/v1/devices/{id}/sessions"],
      ["GET", `/v1/devices/${device.id}/profiles`, "/v1/devices/{id}/profiles"],
      ["POST", `/v1/devices/${device.id}/suspend`, "/v1/devices/{id}/{action}", { reason: "deploy day" }],
      ["PATCH", `/v1/devices/${device.id}`, "/v1/devices/{id}", { name: "renamed" }],
    ];
    const undocumented: string[] = [];
    for (const [method, path, documented, body] of routes) {
      const answer = await tenant.call(method, path, body, method === "PATCH" ? { "if-match": `"${device.revision}"` } : undefined);
      const declared = doc.paths[documented]?.[method.toLowerCase()]?.responses ?? {};
      if (answer.status === 503 && !declared["503"]) undocumented.push(`${method} ${documented}`);
    }
    expect(undocumented).toEqual([]);
  });
});

/**
 * The other items a change rewrites whole from what the changing code read of them (review 143): the tenant item (its
 * settings), webhook subscriptions and API keys; and rules, grants and enforcement settings, whose strict reading
 * refuses any attribute it does not know (a 500, no loss), so that a marker can only be written once a release reads it.
 */
const controlItem = async (Key: Record<string, unknown>, table = runtime.ports.tables.control) =>
  (await runtime.ports.db.send(new GetCommand({ TableName: table, Key, ConsistentRead: true }))).Item!;

/** The item rewritten as the next release would write it: its form raised, an attribute (and `nested`) this code does not know. */
async function asNextRelease(Key: Record<string, unknown>, table = runtime.ports.tables.control, nested: Record<string, unknown> = {}) {
  const written = { ...(await controlItem(Key, table)), ...nested, format: nextReleaseForm, keptByNextRelease: "k1" };
  await runtime.ports.db.send(new PutCommand({ TableName: table, Item: written }));
  return written;
}

/** The answer a change of an item of a newer form gets: a retryable refusal naming it, and nothing changed. */
async function expectRefused(
  answer: { status: number; headers: Headers; json: { type: string } },
  Key: Record<string, unknown>,
  written: unknown,
  table?: string,
) {
  expect([answer.status, answer.json.type]).toEqual([503, "urn:simroot:problem:store.newer_format"]);
  expect(answer.headers.get("retry-after")).toMatch(/^\d+$/);
  expect(await controlItem(Key, table)).toEqual(written);
}

describe("the tenant item of a newer release (review 143)", () => {
  it("is refused, not rewritten without the settings it does not know, by a change of another setting through this release's API", async () => {
    const tenant = await tenantClient(runtime);
    const key = tenantItemKey(tenant.tenant.id);
    const stored = await controlItem(key);
    const written = await asNextRelease(key, undefined, { settings: { ...stored.settings, quarantineOnNewCountry: true } });
    const patched = await tenant.call("PATCH", "/v1/tenant/settings", { imeiLock: false }, { "if-match": '"1"' });
    await expectRefused(patched, key, written);
  });

  it("is marked with its form by every write of this release, so that an older release can tell", async () => {
    const tenant = await tenantClient(runtime);
    const key = tenantItemKey(tenant.tenant.id);
    expect((await controlItem(key)).format).toBe(thisReleaseForm);
    const patched = await tenant.call("PATCH", "/v1/tenant/settings", { imeiLock: false }, { "if-match": '"1"' });
    expect(patched.status, patched.text).toBe(200);
    expect((await controlItem(key)).format).toBe(thisReleaseForm);
  });
});

describe("a webhook subscription of a newer release (review 143)", () => {
  it("is refused, not rewritten without what it does not know, by a change through this release's API", async () => {
    const tenant = await tenantClient(runtime);
    const created = await tenant.call("POST", "/v1/webhooks", {
      url: "https://receiver.example.com/hook",
      pattern: { source: ["simroot"], "detail-type": ["device.updated"] },
    });
    expect(created.status, created.text).toBe(201);
    const key = recordKey(tenant.tenant.id, "webhook", created.json.id);
    const written = await asNextRelease(key, runtime.ports.tables.automation);
    const patched = await tenant.call("PATCH", `/v1/webhooks/${created.json.id}`, { description: "renamed" }, { "if-match": '"1"' });
    await expectRefused(patched, key, written, runtime.ports.tables.automation);
  });

  it("is marked with its form by every write of this release", async () => {
    const tenant = await tenantClient(runtime);
    const created = await tenant.call("POST", "/v1/webhooks", {
      url: "https://receiver.example.com/hook",
      pattern: { source: ["simroot"], "detail-type": ["device.updated"] },
    });
    const key = recordKey(tenant.tenant.id, "webhook", created.json.id);
    expect((await controlItem(key, runtime.ports.tables.automation)).format).toBe(thisReleaseForm);
    const patched = await tenant.call("PATCH", `/v1/webhooks/${created.json.id}`, { description: "renamed" }, { "if-match": '"1"' });
    expect(patched.status, patched.text).toBe(200);
    expect((await controlItem(key, runtime.ports.tables.automation)).format).toBe(thisReleaseForm);
  });
});

describe("an automation rule of a newer release (review 145)", () => {
  const watch = {
    name: "watch",
    pattern: { source: ["simroot"], "detail-type": ["device.updated"] },
    actions: [{ type: "add-labels", labels: { watched: "yes" } }],
    dryRun: true,
  };

  it("is refused, not rewritten without what it does not know, by a change through this release's API", async () => {
    const tenant = await tenantClient(runtime);
    const created = await tenant.call("POST", "/v1/automation/rules", watch);
    expect(created.status, created.text).toBe(201);
    const key = recordKey(tenant.tenant.id, "rule", created.json.id);
    const written = await asNextRelease(key, runtime.ports.tables.automation);
    const patched = await tenant.call("PATCH", `/v1/automation/rules/${created.json.id}`, { name: "renamed" }, { "if-match": '"1"' });
    await expectRefused(patched, key, written, runtime.ports.tables.automation);
  });

  it("is marked with its form by every write of this release, and shown without it", async () => {
    const tenant = await tenantClient(runtime);
    const created = await tenant.call("POST", "/v1/automation/rules", watch);
    const key = recordKey(tenant.tenant.id, "rule", created.json.id);
    expect((await controlItem(key, runtime.ports.tables.automation)).format).toBe(thisReleaseForm);
    const patched = await tenant.call("PATCH", `/v1/automation/rules/${created.json.id}`, { name: "renamed" }, { "if-match": '"1"' });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json).not.toHaveProperty("format");
    expect((await controlItem(key, runtime.ports.tables.automation)).format).toBe(thisReleaseForm);
  });
});

describe("a webhook subscription of a newer release, during the deploy (review 145)", () => {
  it("does not fail the delivery of an event to the tenant's subscriptions: the event is not dead-lettered", async () => {
    // Queuing a delivery changes no subscription; an older instance refused it whole, and the webhooks consumer failed
    // the event, for every subscription of the tenant, until its retries ran out and it was dead-lettered.
    const tenant = await tenantClient(runtime);
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208019000000145" })).json;
    const created = await tenant.call("POST", "/v1/webhooks", {
      url: "https://receiver.example.com/hook",
      pattern: { source: ["simroot"], "detail-type": ["device.updated"] },
    });
    expect(created.status, created.text).toBe(201);
    await asNextRelease(recordKey(tenant.tenant.id, "webhook", created.json.id), runtime.ports.tables.automation);
    const patched = await tenant.call("PATCH", `/v1/devices/${device.id}`, { name: "renamed" }, { "if-match": '"1"' });
    expect(patched.status, patched.text).toBe(200);
    await runtime.settled();
    expect(runtime.bus.deadLetters().filter((letter) => letter.rule === "webhooks")).toEqual([]);
  });
});

describe("an API key of a newer release (review 143)", () => {
  it("is refused, not rewritten without what it does not know, by a rotation through this release's API", async () => {
    const tenant = await tenantClient(runtime);
    const created = await tenant.call("POST", "/v1/keys", { name: "dashboard", role: "viewer" });
    const key = apiKeyItemKey(created.json.key.keyId);
    const written = await asNextRelease(key);
    const rotated = await tenant.call("POST", `/v1/keys/${created.json.key.keyId}/rotate`);
    await expectRefused(rotated, key, written);
  });

  it("is refused, not rewritten, by a rotation that read it in this release's form just before the next release wrote it (review 145)", async () => {
    // The rotation checked the form it read, then put the key back on the condition of its secret alone: a newer
    // instance's write in between (the secret kept) was overwritten without what it stored.
    const tenant = await tenantClient(runtime);
    const created = await tenant.call("POST", "/v1/keys", { name: "dashboard", role: "viewer" });
    const key = apiKeyItemKey(created.json.key.keyId);
    const name = "next-release-between";
    let written: Record<string, unknown> | undefined;
    runtime.ports.db.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { TransactItems?: unknown };
        if (written === undefined && input.TransactItems && JSON.stringify(input).includes(key.pk)) written = await asNextRelease(key);
        return next(args);
      },
      { step: "initialize", name },
    );
    let rotated: Awaited<ReturnType<typeof tenant.call>>;
    try {
      rotated = await tenant.call("POST", `/v1/keys/${created.json.key.keyId}/rotate`);
    } finally {
      runtime.ports.db.middlewareStack.remove(name);
    }
    expect(written).toBeDefined();
    await expectRefused(rotated, key, written);
  });

  it("is marked with its form by every write of this release", async () => {
    const tenant = await tenantClient(runtime);
    const created = await tenant.call("POST", "/v1/keys", { name: "dashboard", role: "viewer" });
    const key = apiKeyItemKey(created.json.key.keyId);
    expect((await controlItem(key)).format).toBe(thisReleaseForm);
    expect((await tenant.call("POST", `/v1/keys/${created.json.key.keyId}/rotate`)).status).toBe(200);
    expect((await controlItem(key)).format).toBe(thisReleaseForm);
  });
});

const rule = {
  name: "meters",
  selector: { matchLabels: { fleet: "meters" } },
  destinations: [{ fqdn: "ingest.example.com", ports: [8883], protocol: "tcp" }],
  effect: "allow",
};
const grantInput = () => ({
  principal: "vendor:acme/jane",
  target: { selector: { matchLabels: { fleet: "meters" } } },
  destinations: [{ cidr: "10.8.0.0/24", ports: [22], protocol: "tcp" }],
  notBefore: new Date().toISOString(),
  notAfter: new Date(Date.now() + 3_600_000).toISOString(),
});

describe("rules, grants and enforcement settings of a newer release (review 143)", () => {
  it("a rule is refused as a retryable 503 by a change, a read and the feed's snapshot, not a 500, and nothing changes", async () => {
    const tenant = await tenantClient(runtime);
    const policy = (await tenant.call("POST", "/v1/policies", rule)).json;
    const key = policyItemKey(tenant.tenant.id, "policy", policy.id);
    const written = await asNextRelease(key);
    await expectRefused(
      await tenant.call("PUT", `/v1/policies/${policy.id}`, { ...rule, name: "renamed" }, { "if-match": '"1"' }),
      key,
      written,
    );
    expect((await tenant.call("GET", `/v1/policies/${policy.id}`)).status).toBe(503);
    const pep = (await tenant.call("POST", "/v1/keys", { name: "pep", role: "pep" })).json.token as string;
    const snapshot = await runtime.app.request("/v1/feed", { headers: { authorization: `Bearer ${pep}` } });
    expect(snapshot.status).toBe(503);
  });

  it("a grant is refused as a retryable 503 by a revocation, not a 500, and nothing changes", async () => {
    const tenant = await tenantClient(runtime);
    const grant = await tenant.call("POST", "/v1/grants", grantInput());
    expect(grant.status, grant.text).toBe(201);
    const key = policyItemKey(tenant.tenant.id, "grant", grant.json.id);
    const written = await asNextRelease(key);
    await expectRefused(await tenant.call("POST", `/v1/grants/${grant.json.id}/revoke`, {}), key, written);
  });

  it("enforcement settings are refused as a retryable 503 by a change, not a 500, and nothing changes", async () => {
    const tenant = await tenantClient(runtime);
    const put = await tenant.call("PUT", "/v1/enforcement", { quarantineDestinations: [], failMode: "open" }, { "if-match": '"0"' });
    expect(put.status, put.text).toBe(200);
    const key = enforcementKey(tenant.tenant.id);
    const written = await asNextRelease(key);
    await expectRefused(
      await tenant.call("PUT", "/v1/enforcement", { quarantineDestinations: [], failMode: "closed" }, { "if-match": '"1"' }),
      key,
      written,
    );
  });

  it("read as before when marked with the form this release knows, so that the next release may write the marker", async () => {
    const tenant = await tenantClient(runtime);
    const policy = (await tenant.call("POST", "/v1/policies", rule)).json;
    const grant = (await tenant.call("POST", "/v1/grants", grantInput())).json;
    await tenant.call("PUT", "/v1/enforcement", { quarantineDestinations: [], failMode: "open" }, { "if-match": '"0"' });
    for (const key of [
      policyItemKey(tenant.tenant.id, "policy", policy.id),
      policyItemKey(tenant.tenant.id, "grant", grant.id),
      enforcementKey(tenant.tenant.id),
    ]) {
      const item = await controlItem(key);
      await runtime.ports.db.send(new PutCommand({ TableName: runtime.ports.tables.control, Item: { ...item, format: thisReleaseForm } }));
    }
    expect((await tenant.call("GET", `/v1/policies/${policy.id}`)).json).toEqual(policy);
    const renamed = await tenant.call("PUT", `/v1/policies/${policy.id}`, { ...rule, name: "renamed" }, { "if-match": '"1"' });
    expect(renamed.status, renamed.text).toBe(200);
    expect((await tenant.call("POST", `/v1/grants/${grant.id}/revoke`, {})).status).toBe(200);
    const closed = await tenant.call("PUT", "/v1/enforcement", { quarantineDestinations: [], failMode: "closed" }, { "if-match": '"1"' });
    expect(closed.status, closed.text).toBe(200);
  });
});
