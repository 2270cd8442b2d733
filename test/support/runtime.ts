import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, inject } from "vitest";
import { createTenantWithAdminKey } from "@simroot/core";
import { startLocalRuntime, type LocalRuntimeOptions } from "@simroot/local/runtime";
import { standardWebhookHeaders } from "./webhooks.ts";

/**
 * The control plane as tests use it: the shared in-memory DynamoDB Local with tables of
 * this test's own (a fresh prefix), the local bus with fast retries, and the Hono app.
 * Each request runs with the grants of the function that serves it in AWS; `stop` fails the
 * test file when any was refused, even one the code caught (IAM would have refused it in AWS).
 */
export async function startTestRuntime(options: Partial<LocalRuntimeOptions> = {}) {
  const runtime = await startLocalRuntime({
    dynamoEndpoint: inject("dynamoEndpoint"),
    tablePrefix: `t${randomBytes(5).toString("hex")}-`,
    retry: { baseDelayMs: 5, maxDelayMs: 50, maxAttempts: 4 },
    ...options,
  });
  const stop = runtime.stop;
  return Object.assign(runtime, {
    stop: async () => {
      await stop();
      const refused = [
        ...new Set(runtime.grantViolations.map((v) => `${v.function}: ${v.action} on ${v.table.replace(/^t[0-9a-f]+-/, "")}`)),
      ];
      if (refused.length > 0)
        throw new Error(`requests IAM would refuse in AWS (grant them in core's platform/functions.ts): ${refused.join("; ")}`);
    },
  });
}

export type TestRuntime = Awaited<ReturnType<typeof startTestRuntime>>;

/** A tenant with an admin key, and a `call` that sends authenticated JSON requests to the app. */
export async function tenantClient(runtime: TestRuntime, name = "acme") {
  const { tenant, token, keyId } = await createTenantWithAdminKey(runtime.ports, name);
  return {
    tenant,
    token,
    keyId,
    call: (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
      call(runtime, token, method, path, body, headers),
  };
}

export async function call(
  runtime: TestRuntime,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  // A record's history (its subject's audit listing, a device's timeline, who held an address when) is written by the
  // history reader of the audit stream, after the commit: eventually consistent, as in AWS. A test reading it first
  // waits for that reader to catch up with what was committed, as an integrator would poll.
  if (method === "GET" && /^\/v1\/(audit\?(.*&)?subject=|devices\/[^/?]+\/timeline|devices\/lookup\?)/.test(path)) {
    await runtime.history.caughtUp();
  }
  const response = await runtime.app.request(path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  // biome-ignore lint/suspicious/noExplicitAny: the body of whichever route a test calls, read field by field across some 60 test files whose assertions check its shape (typed as unknown, they would not compile without some 600 casts)
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}

/** A fact about the SIM `imsi` as an operator core reports it to a simroot-format source (`simrootSource`). */
export const coreFact = (type: string, imsi: string, data: Record<string, unknown>, occurredAt: string, dedupeKey: string) => ({
  type,
  dedupeKey,
  occurredAt,
  device: { imsi },
  sourceType: "core",
  data,
});

/**
 * A simroot-format source of the tenant, and a function that posts facts to it signed as its sender would (Standard
 * Webhooks), expects 202 and waits until the runtime has applied them.
 */
export async function simrootSource(runtime: TestRuntime, tenant: Awaited<ReturnType<typeof tenantClient>>) {
  const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
  return async (...facts: unknown[]) => {
    const text = JSON.stringify(facts);
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: standardWebhookHeaders(credentials.webhookSecret, text),
      body: text,
    });
    expect(response.status).toBe(202);
    await runtime.settled();
  };
}

/** An eIM source of the tenant (its JSON form), and a function that posts notifications to it, expects 202 and waits until they are applied. */
export async function eimJsonSource(runtime: TestRuntime, tenant: Awaited<ReturnType<typeof tenantClient>>) {
  const created = (await tenant.call("POST", "/v1/sources", { name: "eIM", format: "eim" })).json;
  return async (body: unknown) => {
    const response = await runtime.app.request(created.source.ingestPath, {
      method: "POST",
      headers: { authorization: `Bearer ${created.credentials.bearerToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(202);
    await runtime.settled();
  };
}

/**
 * Two runtimes over the same tables (a fresh prefix), sharing nothing else, as two Lambda instances: started before the
 * file's tests, stopped after them. Read `instances.a` and `instances.b` inside the tests.
 */
export function twoInstances(name: string) {
  const instances = {} as { a: TestRuntime; b: TestRuntime };
  beforeAll(async () => {
    const tablePrefix = `${name}${randomBytes(4).toString("hex")}-`;
    instances.a = await startTestRuntime({ tablePrefix });
    instances.b = await startTestRuntime({ tablePrefix, feedHubUrl: instances.a.feedHubUrl });
  }, 60_000);
  afterAll(async () => {
    await instances.b?.stop();
    await instances.a?.stop();
  });
  return instances;
}
