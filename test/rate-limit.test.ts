/**
 * Rate limits per API key and per ingestion source (issue 13 item 5), held across control-plane
 * instances that share nothing but the store (separate processes, as Lambda instances are):
 * 429 with Retry-After and RateLimit headers once a key or a source used its tenant's limit,
 * the limits set per tenant, and one key's or source's use never limits another's.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Schema } from "@simroot/sdk";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startInstance, type Instance } from "./support/instances.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { rateLimitFields } from "./support/rate-limit-headers.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let a: Instance;
let b: Instance;
let local: TestRuntime;
const tablePrefix = `rate${randomBytes(4).toString("hex")}-`;
let feedSigningKeyPath: string;
beforeAll(async () => {
  const dynamoEndpoint = inject("dynamoEndpoint");
  feedSigningKeyPath = join(await mkdtemp(join(tmpdir(), "simroot-rate-")), "feed-signing-key.pem");
  a = await startInstance({ dynamoEndpoint, tablePrefix, feedSigningKeyPath });
  b = await startInstance({ dynamoEndpoint, tablePrefix, feedSigningKeyPath, feedHubUrl: a.feedHubUrl });
  local = await startTestRuntime({ tablePrefix, feedHubUrl: a.feedHubUrl });
}, 60_000);
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop(), local?.stop()]);
});

async function http<Body = unknown>(
  base: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, json: (await response.json()) as Body };
}

interface CreatedSource {
  readonly source: { readonly ingestPath: string };
  readonly credentials: { readonly webhookSecret: string };
}

/** A webhook of the source carrying one fact of the device `imsi`, signed as Standard Webhooks sign. */
function postFact<Body = unknown>(base: string, created: CreatedSource, n: number, imsi: string) {
  const text = JSON.stringify([
    {
      type: "device.reachability-changed",
      dedupeKey: `rate-${created.source.ingestPath}-${n}`,
      occurredAt: new Date().toISOString(),
      device: { imsi },
      sourceType: "test",
      data: { reachable: true },
    },
  ]);
  return http<Body>(
    base,
    undefined,
    "POST",
    created.source.ingestPath,
    text,
    standardWebhookHeaders(created.credentials.webhookSecret, text),
  );
}

/** Sets the tenant's limits (If-Match on its revision). */
async function limit(tenant: Awaited<ReturnType<typeof tenantClient>>, rateLimits: Record<string, number>) {
  const current = await tenant.call("GET", "/v1/tenant");
  const changed = await tenant.call("PATCH", "/v1/tenant/settings", { rateLimits }, { "if-match": current.headers.get("etag")! });
  expect(changed.status, JSON.stringify(changed.json)).toBe(200);
  // Each instance reads a tenant's settings at most every 5 s.
  await new Promise((resolve) => setTimeout(resolve, 5_100));
  // Windows are whole minutes: start a test's requests well inside one.
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_100 - intoMinute));
}

describe("rate limits across instances that share nothing", () => {
  it("answers 429 with Retry-After and RateLimit headers once a key used its limit on any instance, and limits no other key", async () => {
    const tenant = await tenantClient(local, "rate-keys");
    const other = (await tenant.call("POST", "/v1/keys", { name: "other", role: "viewer" })).json.token as string;
    const busy = (await tenant.call("POST", "/v1/keys", { name: "busy", role: "viewer" })).json.token as string;
    await limit(tenant, { apiKeyPerMinute: 5 });

    const answers = [];
    for (let n = 0; n < 4; n++) answers.push(await http(n % 2 === 0 ? a.url : b.url, busy, "GET", "/v1/devices"));
    // Four answered (two on each instance), with what is left of the limit.
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
    expect(rateLimitFields(answers[0]!.headers).policies.default).toEqual({ q: 5, w: 60 });
    expect(answers.map((answer) => rateLimitFields(answer.headers).left.default?.r)).toEqual([4, 3, 2, 1]);

    const fifth = await http(b.url, busy, "GET", "/v1/devices");
    expect(fifth.status).toBe(200);
    const refusedOnA = await http<Schema<"Problem">>(a.url, busy, "GET", "/v1/devices");
    const refusedOnB = await http<Schema<"Problem">>(b.url, busy, "GET", "/v1/devices");
    for (const refused of [refusedOnA, refusedOnB]) {
      expect(refused.status).toBe(429);
      expect(refused.headers.get("content-type")).toBe("application/problem+json");
      expect(refused.json.type).toBe("urn:simroot:problem:rate.limited");
      const retryAfter = Number(refused.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(rateLimitFields(refused.headers).left.default).toEqual({ r: 0, t: retryAfter });
    }
    // Another key of the same tenant is not limited by this one's use.
    expect((await http(a.url, other, "GET", "/v1/devices")).status).toBe(200);
  }, 90_000);

  it("answers 429 to a source past its limit, before parsing its events, and accepts another source's webhooks", async () => {
    const tenant = await tenantClient(local, "rate-sources");
    const create = async (name: string) => (await tenant.call("POST", "/v1/sources", { name, format: "simroot" })).json;
    const noisy = await create("noisy");
    const quiet = await create("quiet");
    await limit(tenant, { sourcePerMinute: 3 });
    const post = <Body = unknown>(base: string, created: CreatedSource, n: number) => postFact<Body>(base, created, n, "208019990000001");
    const answers = [];
    for (let n = 0; n < 5; n++) answers.push(await post(n % 2 === 0 ? a.url : b.url, noisy, n));
    expect(answers.map(({ status }) => status)).toEqual([202, 202, 202, 429, 429]);
    // Every answer says what is left, as /openapi.json lists it for 202 and 429 (a sender paces itself by it).
    expect(answers.map(({ headers }) => rateLimitFields(headers).left.default)).toEqual([
      { r: 2, t: expect.any(Number) },
      { r: 1, t: expect.any(Number) },
      { r: 0, t: expect.any(Number) },
      { r: 0, t: expect.any(Number) },
      { r: 0, t: expect.any(Number) },
    ]);
    expect(answers.every(({ headers }) => rateLimitFields(headers).policies.default?.q === 3)).toBe(true);
    const refused = await post<Schema<"Problem">>(a.url, noisy, 9);
    expect(refused.json.type).toBe("urn:simroot:problem:rate.limited");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await post(b.url, quiet, 0)).status).toBe(202);
  }, 90_000);

  it("refuses a limit that is not a positive whole number, naming the field, and changes nothing", async () => {
    const tenant = await tenantClient(local, "rate-settings");
    const current = await tenant.call("GET", "/v1/tenant");
    const refused = await tenant.call(
      "PATCH",
      "/v1/tenant/settings",
      { rateLimits: { apiKeyPerMinute: 0 } },
      { "if-match": current.headers.get("etag")! },
    );
    expect(refused.status).toBe(400);
    expect(refused.json.errors.map((issue: { path: string }) => issue.path)).toEqual(["rateLimits.apiKeyPerMinute"]);
    expect((await tenant.call("GET", "/v1/tenant")).json.settings.rateLimits).toEqual({
      apiKeyPerMinute: 6000,
      pepKeyPerMinute: 120000,
      sourcePerMinute: 6000,
    });
  });
});

describe("what a tenant's credentials may add up to (review 108)", () => {
  // Two more instances, each told by the deployment that a tenant's API keys (other than enforcement points') may make 6
  // requests a minute together and its sources 3: as low as that, every request is counted in the store before it is
  // decided, so the limit is exact across instances.
  let c: Instance;
  let d: Instance;
  beforeAll(async () => {
    const tenantLimits = {
      SIMROOT_RATE_LIMIT_TENANT_API_KEYS_PER_MINUTE: "6",
      SIMROOT_RATE_LIMIT_TENANT_SOURCES_PER_MINUTE: "3",
    };
    const start = { dynamoEndpoint: inject("dynamoEndpoint"), tablePrefix, feedSigningKeyPath, feedHubUrl: a.feedHubUrl };
    [c, d] = await Promise.all([startInstance(start, tenantLimits), startInstance(start, tenantLimits)]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([c?.stop(), d?.stop()]);
  });

  /** Windows are whole minutes: a test's requests start well inside one. */
  async function intoMinute() {
    const into = Date.now() % 60_000;
    if (into > 45_000) await new Promise((resolve) => setTimeout(resolve, 60_100 - into));
  }

  it("refuses a tenant's API keys together past the deployment's limit, whichever key and instance, and no other tenant's or its enforcement points", async () => {
    const tenant = await tenantClient(local, "rate-tenant-keys");
    // Set up through core, not the API: the setup's own requests would count among the tenant's 6.
    const { createApiKey, updateTenantSettings } = await import("@simroot/core");
    const ctx = { tenantId: tenant.tenant.id, actor: `key:${tenant.keyId}`, requestId: "req_rate_tenant", role: "admin" as const };
    const key = async (name: string, role: "viewer" | "pep" = "viewer") =>
      (await createApiKey(local.ports, ctx, { name, role })).value.token;
    const [first, second, third, fourth, fifth, pep] = [
      await key("first"),
      await key("second"),
      await key("third"),
      await key("fourth"),
      await key("fifth"),
      await key("edge", "pep"),
    ];
    const neighbour = await tenantClient(local, "rate-tenant-neighbour");
    // Each key may make 2 requests a minute; the tenant's keys 6 together.
    await updateTenantSettings(local.ports, ctx, { settings: { rateLimits: { apiKeyPerMinute: 2 } }, ifRevision: tenant.tenant.revision });
    // Each instance reads a tenant's settings at most every 5 s.
    await new Promise((resolve) => setTimeout(resolve, 5_100));
    await intoMinute();

    const answers = [];
    // The first key's third request is refused by its own limit, and spends nothing of the tenant's.
    for (const token of [first, first, first])
      answers.push(await http(answers.length % 2 === 0 ? c.url : d.url, token, "GET", "/v1/devices"));
    for (const token of [second, second, third, third])
      answers.push(await http(answers.length % 2 === 0 ? c.url : d.url, token, "GET", "/v1/devices"));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 429, 200, 200, 200, 200]);
    const fields = answers.map((answer) => rateLimitFields(answer.headers));
    expect(fields[0]!.policies).toEqual({ default: { q: 2, w: 60 }, tenant: { q: 6, w: 60 } });
    // Counted in the store one by one: the refused request is not among them (what it was told of the tenant's is what
    // its instance had learned, which may be a request behind).
    expect(fields.filter((_, n) => n !== 2).map((field) => field.left.tenant?.r)).toEqual([5, 4, 3, 2, 1, 0]);

    // Six taken: a key that has used none of its own is refused, on either instance, until the minute ends.
    const refused = await http<Schema<"Problem">>(c.url, fourth, "GET", "/v1/devices");
    expect([refused.status, refused.json.type]).toEqual([429, "urn:simroot:problem:rate.limited"]);
    expect(refused.json.detail).toMatch(/^More than 6 requests in 60 s by the tenant's credentials of this kind together: retry in \d+ s$/);
    const { left } = rateLimitFields(refused.headers);
    // Refused by the tenant's limit, the request is given back to its key's: 2 of 2 left.
    expect([left.default?.r, left.tenant?.r]).toEqual([2, 0]);
    expect(Number(refused.headers.get("retry-after"))).toBe(left.tenant?.t);
    expect((await http(d.url, fifth, "GET", "/v1/devices")).status).toBe(429);

    // Enforcement points' keys are counted apart (their own tenant-wide limit), and so is every other tenant.
    const feed = await http(d.url, pep, "GET", "/v1/feed");
    expect(feed.status).toBe(200);
    expect(rateLimitFields(feed.headers).policies.tenant).toEqual({ q: 6_000_000, w: 60 });
    expect((await http(c.url, neighbour.token, "GET", "/v1/devices")).status).toBe(200);
  }, 90_000);

  it("refuses a tenant's sources together past the deployment's limit, before parsing, and accepts another tenant's", async () => {
    const tenant = await tenantClient(local, "rate-tenant-sources");
    const neighbour = await tenantClient(local, "rate-tenant-sources-neighbour");
    const create = async (client: typeof tenant, name: string) =>
      (await client.call("POST", "/v1/sources", { name, format: "simroot" })).json as CreatedSource;
    const [one, two, theirs] = [await create(tenant, "one"), await create(tenant, "two"), await create(neighbour, "theirs")];
    await intoMinute();
    const post = <Body = unknown>(base: string, created: CreatedSource, n: number) => postFact<Body>(base, created, n, "208019990000002");
    const answers = [await post(c.url, one, 0), await post(d.url, two, 1), await post(c.url, one, 2)];
    expect(answers.map(({ status }) => status)).toEqual([202, 202, 202]);
    expect(answers.map(({ headers }) => rateLimitFields(headers).left.tenant?.r)).toEqual([2, 1, 0]);
    // Each source has used at most 2 of its 6,000: the tenant's sources have used their 3 together. The refused webhook
    // is given back to its source's count: the source has 5,999 left, as before it.
    const refused = await post<Schema<"Problem">>(d.url, two, 3);
    expect([refused.status, refused.json.type]).toEqual([429, "urn:simroot:problem:rate.limited"]);
    expect(rateLimitFields(refused.headers).left).toEqual({
      default: { r: 5_999, t: expect.any(Number) },
      tenant: { r: 0, t: expect.any(Number) },
    });
    expect((await post(c.url, theirs, 0)).status).toBe(202);
  }, 90_000);
});

describe("a tenant's settings read once for a herd", () => {
  it("reads the store once when many requests of a tenant miss the instance's cache together", async () => {
    const { forgetTenantSettings, tenantSettings } = await import("@simroot/core/access/tenant-settings");
    const acme = await tenantClient(local);
    let reads = 0;
    const db = new Proxy(local.ports.db, {
      get: (target, name, receiver) =>
        name === "send"
          ? (command: unknown) => {
              reads++;
              return target.send(command as never);
            }
          : Reflect.get(target, name, receiver),
    });
    const ports = { ...local.ports, db };
    forgetTenantSettings(acme.tenant.id);
    const answers = await Promise.all(Array.from({ length: 50 }, () => tenantSettings(ports, acme.tenant.id)));
    expect(reads).toBe(1);
    expect(new Set(answers.map((settings) => JSON.stringify(settings))).size).toBe(1);
  });

  it("reads consistently after this instance changed them, and neither keeps nor shares a read under way then (review 59)", async () => {
    const { forgetTenantSettings, tenantSettings } = await import("@simroot/core/access/tenant-settings");
    const { updateTenantSettings } = await import("@simroot/core");
    const acme = await tenantClient(local);
    const consistent: (boolean | undefined)[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    // The first read answers before the change and is delivered after it.
    const slow = new Proxy(local.ports.db, {
      get: (target, name, receiver) =>
        name === "send"
          ? async (command: { input: { ConsistentRead?: boolean } }) => {
              consistent.push(command.input.ConsistentRead);
              const answer = await target.send(command as never);
              if (first) {
                first = false;
                await held;
              }
              return answer;
            }
          : Reflect.get(target, name, receiver),
    });
    const enforcement = await acme.call("GET", "/v1/enforcement");
    await acme.call(
      "PUT",
      "/v1/enforcement",
      { quarantineDestinations: [], failMode: "closed" },
      { "if-match": enforcement.headers.get("etag")! },
    );
    const revision = (await acme.call("GET", "/v1/tenant")).json.revision as number;
    forgetTenantSettings(acme.tenant.id);
    const before = tenantSettings({ ...local.ports, db: slow }, acme.tenant.id);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const ctx = { tenantId: acme.tenant.id, actor: "key:test", requestId: "req_settings_race" };
    await updateTenantSettings(local.ports, ctx, { settings: { imeiLock: false }, ifRevision: revision });
    const joined = tenantSettings({ ...local.ports, db: slow }, acme.tenant.id);
    release();
    expect((await before).imeiLock).toBe(true);
    expect((await joined).imeiLock).toBe(false);
    expect((await tenantSettings(local.ports, acme.tenant.id)).imeiLock).toBe(false);
    expect(consistent).toEqual([true, true]);
  });
});
