/**
 * The SDK and the `simroot` CLI against a live local server (HTTP on a free port), and the
 * generated `openapi.d.ts` against what the current app generates.
 */
import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, SimrootApiError, type SimrootClient } from "@simroot/sdk";
import { createTestPki } from "../packages/core/src/ingest/adapters/eim-pki.test-support.ts";
import { generateOpenApiTypes, generatedPath } from "../packages/sdk/scripts/generate.ts";
import { timeouts } from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

const root = join(import.meta.dirname, "..");
const cli = join(root, "packages", "sdk", "src", "cli.ts");
const bin = join(root, "packages", "sdk", "bin", "simroot.js");

let runtime: TestRuntime;
let url: string;
beforeAll(async () => {
  runtime = await startTestRuntime({ port: 0 });
  url = runtime.url!;
});
afterAll(() => runtime.stop());

/** A fresh tenant and an SDK client for its admin key; `requests` counts what went over the wire. */
async function tenant() {
  const { token, tenant } = await tenantClient(runtime);
  const requests: Request[] = [];
  const client = createClient({
    baseUrl: url,
    apiKey: token,
    fetch: (request) => {
      requests.push(request.clone());
      return fetch(request);
    },
  });
  return { token, tenant, client, requests };
}

let imsiSeq = 0;
const nextImsi = () => `20801${String(Date.now() % 1e7).padStart(7, "0")}${String(imsiSeq++ % 1000).padStart(3, "0")}`;

async function register(client: SimrootClient, labels: Record<string, string> = { fleet: "meters" }) {
  return client.post("/v1/devices", { body: { imsi: nextImsi(), labels } });
}

/** Runs `node <script> ...args` with the CLI's environment; never rejects on a non-zero exit. */
function run(args: string[], env: Record<string, string>, script = cli) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: { ...process.env, SIMROOT_URL: "", SIMROOT_API_KEY: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("the generated API types", () => {
  it("match what the current app generates (run `npm run sdk:generate` when this fails)", async () => {
    expect(await readFile(generatedPath, "utf8")).toBe(await generateOpenApiTypes());
  });
});

describe("the SDK", () => {
  it("registers, reads, looks up by IMSI and suspends a device, sending the key and a request id", async () => {
    const { client, requests } = await tenant();
    const device = await client.post("/v1/devices", { body: { name: "meter-1", imsi: nextImsi(), labels: { fleet: "meters" } } });
    expect(device).toMatchObject({ name: "meter-1", state: "active", labels: { fleet: "meters" }, revision: 1 });
    expect(device.id).toMatch(/^dev_/);

    expect(await client.get("/v1/devices/{id}", { params: { path: { id: device.id } } })).toEqual(device);
    expect(await client.get("/v1/devices/lookup", { params: { query: { imsi: device.imsi } } })).toEqual(device);

    const suspended = await client.post("/v1/devices/{id}/{action}", {
      params: { path: { id: device.id, action: "suspend" } },
      body: { reason: "stolen meter" },
    });
    expect(suspended).toMatchObject({ outcome: "applied", device: { id: device.id, state: "suspended" } });
    expect((await client.get("/v1/devices/{id}", { params: { path: { id: device.id } } })).state).toBe("suspended");

    expect(requests.every((request) => request.headers.get("authorization")?.startsWith("Bearer sr_key_"))).toBe(true);
    const ids = requests.map((request) => request.headers.get("x-request-id"));
    expect(ids.every((id) => typeof id === "string" && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("paginates the device list across pages, in order, each device once", async () => {
    const { client, requests } = await tenant();
    const registered = [];
    for (let i = 0; i < 5; i++) registered.push(await register(client));
    requests.length = 0;

    const seen = [];
    for await (const device of client.paginate("/v1/devices", { limit: 2 })) seen.push(device.id);

    expect(seen).toEqual(registered.map((device) => device.id));
    const pages = requests.map((request) => new URL(request.url).searchParams);
    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages.every((query) => query.get("limit") === "2")).toBe(true);
    expect(pages[0]!.has("cursor")).toBe(false);
    expect(pages.slice(1).every((query) => query.has("cursor"))).toBe(true);
  });

  it("throws SimrootApiError with the problem details and errors[].path for invalid input", async () => {
    const { token } = await tenant();
    const client = createClient({ baseUrl: url, apiKey: token, requestId: () => "sdk-test-validation" });
    const error = await client.post("/v1/devices", { body: { eid: "123", labels: { Bad: "x" } } }).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(SimrootApiError);
    const problem = error as SimrootApiError;
    expect(problem).toMatchObject({
      status: 400,
      title: "request.invalid",
      type: "urn:simroot:problem:request.invalid",
      requestId: "sdk-test-validation",
    });
    expect(problem.errors.map((field) => field.path)).toEqual(expect.arrayContaining(["eid", "labels.Bad"]));
  });

  it("throws SimrootApiError 401 for a bad key and 404 for an unknown device", async () => {
    const bad = createClient({ baseUrl: url, apiKey: "sr_key_nope" });
    await expect(bad.get("/v1/devices")).rejects.toMatchObject({ name: "SimrootApiError", status: 401, title: "auth.invalid_key" });
    const { client } = await tenant();
    await expect(client.get("/v1/devices/{id}", { params: { path: { id: "dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST" } } })).rejects.toMatchObject({
      status: 404,
    });
  });

  it("reaches routes by plain path too (for routes newer than the generated types), with the same errors", async () => {
    const { client } = await tenant();
    const device = await register(client);
    expect(await client.request("GET", "/v1/devices/{id}", { path: { id: device.id } })).toEqual(device);
    expect(await client.request("GET", "/v1/devices", { query: { limit: 1 } })).toMatchObject({ items: [device] });
    await expect(client.request("POST", "/v1/devices/{id}/suspend", { path: { id: device.id }, body: {} })).rejects.toMatchObject({
      status: 400,
      errors: [expect.objectContaining({ path: "reason" })],
    });
    const lines = await client.fetchRaw("GET", "/v1/audit/export");
    expect(lines.headers.get("content-type")).toContain("application/x-ndjson");
    // The tenant's creation, then the device's registration.
    expect((await lines.text()).trim().split("\n")).toHaveLength(2);
  });

  it("makes idempotent POSTs: the same Idempotency-Key registers one device", async () => {
    const { client, requests } = await tenant();
    const body = { imsi: nextImsi(), labels: { fleet: "meters" } };
    const first = await client.idempotentPost("/v1/devices", { body, idempotencyKey: "register-meter-7" });
    const again = await client.idempotentPost("/v1/devices", { body, idempotencyKey: "register-meter-7" });

    expect(again).toEqual(first);
    expect(requests.map((request) => request.headers.get("idempotency-key"))).toEqual(["register-meter-7", "register-meter-7"]);
    expect((await client.get("/v1/devices")).items.map((device) => device.id)).toEqual([first.id]);
  });
});

describe("the SDK's errors", () => {
  it("carry the Retry-After a rate-limited request answered (review 142)", { timeout: 30_000 }, async () => {
    // A 429 or a 503 was thrown without it: the response was gone, and a caller could not wait what the server asked.
    const acme = await tenantClient(runtime);
    const current = await acme.call("GET", "/v1/tenant");
    const limited = await acme.call(
      "PATCH",
      "/v1/tenant/settings",
      { rateLimits: { apiKeyPerMinute: 1 } },
      { "if-match": current.headers.get("etag")! },
    );
    expect(limited.status).toBe(200);
    // Each instance reads a tenant's settings at most every 5 s.
    await new Promise((resolve) => setTimeout(resolve, 5_100));
    const answered: string[] = [];
    const client = createClient({
      baseUrl: url,
      apiKey: acme.token,
      // Sent once: a GET would otherwise wait out a Retry-After of up to 20 s (the minute's end) and try again.
      retry: { retries: 0 },
      fetch: async (request) => {
        const response = await fetch(request);
        answered.push(response.headers.get("retry-after") ?? "");
        return response;
      },
    });
    let refused: unknown;
    for (let attempt = 0; attempt < 4 && !refused; attempt++)
      refused = await client.get("/v1/devices").then(
        () => undefined,
        (error) => error,
      );
    expect(refused).toBeInstanceOf(SimrootApiError);
    const error = refused as SimrootApiError;
    expect([error.status, error.retryAfterSeconds]).toEqual([429, Number(answered.at(-1))]);
    expect(error.retryAfterSeconds).toBeGreaterThan(0);
  });
});

describe("the SDK's idempotent POST when the first attempt fails (review 124)", () => {
  it("waits at least the Retry-After a 503 answered before trying again", async () => {
    const { token } = await tenantClient(runtime);
    const sent: number[] = [];
    const client = createClient({
      baseUrl: url,
      apiKey: token,
      fetch: async (request) => {
        sent.push(performance.now());
        // The API's answer while a dependency is down (problem.ts: 503 with Retry-After), then the real server.
        if (sent.length === 1) {
          return new Response(
            JSON.stringify({ type: "urn:simroot:problem:dependency.unavailable", title: "dependency.unavailable", status: 503 }),
            { status: 503, headers: { "content-type": "application/problem+json", "retry-after": "1" } },
          );
        }
        return fetch(request);
      },
    });
    const device = await client.idempotentPost("/v1/devices", { body: { imsi: nextImsi() } });
    expect(device.id).toMatch(/^dev_/);
    expect(sent).toHaveLength(2);
    // It went out again 3 ms later: the backoff was skipped, and Retry-After never read.
    expect(sent[1]! - sent[0]!).toBeGreaterThanOrEqual(1000);
  });

  it("answers the device when its retry finds the first attempt still under way, instead of throwing 409", async () => {
    const { token } = await tenantClient(runtime);
    const key = `reset-${nextImsi()}`;
    // The first attempt reaches the server, which claims the key and is slow to finish (a slow store write).
    let claimed = false;
    let delayed = false;
    runtime.ports.db.middlewareStack.add(
      (next, context) => async (args) => {
        const command = (context as { commandName?: string }).commandName ?? "";
        if (JSON.stringify(args.input).includes(key) && command.startsWith("Put")) claimed = true;
        else if (claimed && !delayed) {
          delayed = true;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        return next(args);
      },
      { step: "initialize", name: `slowAfterClaim-${key}` },
    );
    let attempts = 0;
    const client = createClient({
      baseUrl: url,
      apiKey: token,
      fetch: async (request) => {
        if (++attempts > 1) return fetch(request);
        // The connection drops after the request went out: the server goes on, the client sees a network error.
        void fetch(request).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 50));
        throw new TypeError("fetch failed", { cause: { code: "ECONNRESET" } });
      },
    });
    try {
      const outcome = await client
        .idempotentPost("/v1/devices", { body: { imsi: nextImsi() }, idempotencyKey: key, retries: 5 })
        .then((device) => ({ device }))
        .catch((error: { status?: number; title?: string }) => ({ status: error.status, title: error.title }));
      expect(outcome).toMatchObject({ device: { id: expect.stringMatching(/^dev_/) } });
    } finally {
      runtime.ports.db.middlewareStack.remove(`slowAfterClaim-${key}`);
    }
  });
});

/**
 * The store refuses the first `times` requests naming `match` (DynamoDB's throttling: the API answers it 503
 * dependency.unavailable with Retry-After); `seen` counts the store's requests naming it, the refused ones included.
 */
function throttle(match: string, times = 1) {
  const name = `throttle-${match}`;
  const state = { seen: 0, remove: () => runtime.ports.db.middlewareStack.remove(name) };
  runtime.ports.db.middlewareStack.add(
    (next) => async (args) => {
      if (!JSON.stringify(args.input).includes(match)) return next(args);
      if (state.seen++ < times) {
        throw Object.assign(new Error("Rate of requests exceeds the allowed throughput"), {
          name: "ThrottlingException",
          $metadata: { httpStatusCode: 400 },
        });
      }
      return next(args);
    },
    { step: "initialize", name },
  );
  return state;
}

/** An SDK client for `token` whose requests' send times are `sent`; `answer` may answer one itself instead of the server. */
function timedClient(token: string, answer: (attempt: number) => Response | undefined = () => undefined) {
  const sent: number[] = [];
  const statuses: number[] = [];
  const client = createClient({
    baseUrl: url,
    apiKey: token,
    fetch: async (request) => {
      sent.push(performance.now());
      const response = answer(sent.length) ?? (await fetch(request));
      statuses.push(response.status);
      return response;
    },
  });
  return { client, sent, statuses };
}

describe("the SDK's retries of requests safe to repeat", () => {
  it("sends a GET again once the Retry-After of the server's 503 has passed, and answers the device", async () => {
    // A GET was never retried: a store throttling for a moment was the integrator's error, though the server said when
    // to come back.
    const { token } = await tenantClient(runtime);
    const { client, sent, statuses } = timedClient(token);
    const device = await register(client);
    // The registration's consumers (history, webhooks, detectors) read the device too: done before the throttle, so
    // the one refusal is the GET's.
    await runtime.settled();
    sent.length = 0;
    statuses.length = 0;
    const store = throttle(device.id);
    try {
      expect(await client.get("/v1/devices/{id}", { params: { path: { id: device.id } } })).toEqual(device);
    } finally {
      store.remove();
    }
    expect(statuses).toEqual([503, 200]);
    expect(store.seen).toBeGreaterThanOrEqual(2);
    expect(sent[1]! - sent[0]!).toBeGreaterThanOrEqual(timeouts.retryAfterSeconds * 1000);
  });

  it("sends a GET again after at least the Retry-After: 1 of a 429, and answers the page", async () => {
    const { token } = await tenantClient(runtime);
    // The rate limiter's answer (core access/rate-limit.ts) on the first attempt, then the server.
    const { client, sent, statuses } = timedClient(token, (attempt) =>
      attempt === 1
        ? new Response(
            JSON.stringify({ type: "urn:simroot:problem:rate.limited", title: "rate.limited", status: 429, detail: "retry in 1 s" }),
            { status: 429, headers: { "content-type": "application/problem+json", "retry-after": "1" } },
          )
        : undefined,
    );
    expect(await client.get("/v1/devices")).toEqual({ items: [] });
    expect(statuses).toEqual([429, 200]);
    expect(sent[1]! - sent[0]!).toBeGreaterThanOrEqual(1000);
  });

  it("never sends a POST without an Idempotency-Key twice: its 503 is thrown, with its Retry-After", async () => {
    const { token, keyId } = await tenantClient(runtime);
    const { client, statuses } = timedClient(token);
    // Every read of the caller's key is refused: a retry would be answered 503 again, and counted.
    const store = throttle(keyId, Number.POSITIVE_INFINITY);
    let error: unknown;
    try {
      error = await client.post("/v1/devices", { body: { imsi: nextImsi() } }).catch((caught: unknown) => caught);
    } finally {
      store.remove();
    }
    expect(error).toBeInstanceOf(SimrootApiError);
    expect([(error as SimrootApiError).status, (error as SimrootApiError).retryAfterSeconds]).toEqual([503, timeouts.retryAfterSeconds]);
    expect(statuses).toEqual([503]);
    expect((await client.get("/v1/devices")).items).toEqual([]);
  });

  it("sends a POST again when it carries an Idempotency-Key, and registers the device once", async () => {
    const { token } = await tenantClient(runtime);
    const { client, statuses } = timedClient(token);
    const imsi = nextImsi();
    const store = throttle(imsi);
    let device: unknown;
    try {
      device = await client.post("/v1/devices", { body: { imsi }, params: { header: { "Idempotency-Key": `register-${imsi}` } } });
    } finally {
      store.remove();
    }
    expect(device).toMatchObject({ id: expect.stringMatching(/^dev_/), imsi });
    expect(statuses).toEqual([503, 201]);
    expect((await client.get("/v1/devices")).items.map((listed) => listed.imsi)).toEqual([imsi]);
  });
});

describe("the simroot CLI", () => {
  it("reaches every operation of the document the control plane serves, by operationId", async () => {
    const { token } = await tenant();
    const env = { SIMROOT_URL: url, SIMROOT_API_KEY: token };
    const document = (await (await fetch(`${url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { operationId?: string }>>;
    };
    const served = Object.values(document.paths).flatMap((item) =>
      Object.values(item)
        .map((operation) => operation?.operationId)
        .filter(Boolean),
    );
    const listed = await run(["operations", "--json"], { SIMROOT_URL: url });
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { operationId: string }[]).map((row) => row.operationId).sort()).toEqual([...served].sort());

    const created = await run(["api", "createDevices", "--body", JSON.stringify({ imsi: nextImsi(), labels: { fleet: "cli" } })], env);
    expect(created.code, created.stderr).toBe(0);
    const device = JSON.parse(created.stdout) as { id: string; revision: number };
    const fetched = await run(["api", "getDevicesById", "--param", `id=${device.id}`], env);
    expect(JSON.parse(fetched.stdout)).toMatchObject({ id: device.id, labels: { fleet: "cli" } });
    // Query parameters, and headers (a conditional update needs If-Match).
    const page = await run(["api", "listDevices", "--param", "limit=1"], env);
    expect(JSON.parse(page.stdout).items).toHaveLength(1);
    const patched = await run(
      [
        "api",
        "updateDevicesById",
        "--param",
        `id=${device.id}`,
        "--header",
        `If-Match="${device.revision}"`,
        "--body",
        '{"name":"renamed"}',
      ],
      env,
    );
    expect(patched.code, patched.stderr).toBe(0);
    expect(JSON.parse(patched.stdout)).toMatchObject({ name: "renamed" });

    // A refused request: the problem, exit 1. A call the document does not allow: usage, exit 2.
    const refused = await run(["api", "createDevices", "--body", "{}"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("request.invalid");
    expect((await run(["api", "getDevicesById"], env)).stderr).toContain("needs --param id=<value>");
    expect((await run(["api", "noSuchOperation"], env)).code).toBe(2);
  });

  it("registers a device, lists it as JSON, reads its timeline and verifies the audit chain", async () => {
    const { token } = await tenant();
    const env = { SIMROOT_URL: url, SIMROOT_API_KEY: token };
    const imsi = nextImsi();

    const registered = await run(
      ["devices", "register", "--imsi", imsi, "--name", "meter-9", "--label", "fleet=meters", "--label", "site=paris"],
      env,
    );
    expect(registered.stderr).toBe("");
    expect(registered.code).toBe(0);
    const id = /^id\s+(dev_\S+)$/m.exec(registered.stdout)?.[1];
    expect(id).toBeDefined();
    expect(registered.stdout).toMatch(/^labels\s+fleet=meters,site=paris$/m);

    const listed = await run(["devices", "list", "--json"], env);
    expect(listed.code).toBe(0);
    const page = JSON.parse(listed.stdout) as { items: { id: string; imsi: string; labels: Record<string, string> }[] };
    expect(page.items).toEqual([expect.objectContaining({ id, imsi, labels: { fleet: "meters", site: "paris" } })]);

    const table = await run(["devices", "list"], env);
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+STATE\s+NAME\s+IMSI/);
    expect(table.stdout).toContain(id!);

    const suspended = await run(["devices", "suspend", id!, "--reason", "lost"], env);
    expect(suspended).toMatchObject({ code: 0, stdout: `applied: ${id} is suspended\n` });

    // The timeline is the history reader's to write, after the commit (eventually consistent, as in AWS).
    await runtime.history.caughtUp();
    const timeline = await run(["devices", "timeline", id!, "--json"], env);
    expect((JSON.parse(timeline.stdout) as { items: { type: string }[] }).items.map((entry) => entry.type)).toEqual([
      "device.registered",
      "device.suspended",
    ]);

    const verified = await run(["audit", "verify"], env);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/^valid: 3 records checked/); // with the tenant's creation
  });

  it("creates a Super SIM source with the Twilio auth token its webhooks are signed with (review 64)", async () => {
    // A supersim source needs the account's auth token, and the CLI had no way to give it: `sources create --format
    // supersim` could only be refused.
    const { token } = await tenant();
    const env = { SIMROOT_URL: url, SIMROOT_API_KEY: token };
    const refused = await run(["sources", "create", "--name", "kore", "--format", "supersim"], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("source.credentials_required");
    const created = await run(
      ["sources", "create", "--name", "kore", "--format", "supersim", "--twilio-auth-token", "0123456789abcdef0123456789abcdef"],
      env,
    );
    expect(created.stderr).not.toMatch(/^error/m);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^format\s+supersim$/m);
    // Its rotation needs the account's (new) token too; given through the environment, it stays off the command line.
    const id = /^id\s+(src_\S+)$/m.exec(created.stdout)?.[1];
    expect(id).toBeDefined();
    const plain = await run(["sources", "rotate", id!], env);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain("source.credentials_required");
    const rotated = await run(["sources", "rotate", id!, "--json"], {
      ...env,
      SIMROOT_TWILIO_AUTH_TOKEN: "fedcba9876543210fedcba9876543210",
      SIMROOT_TWILIO_SHARED_KEY_SECRET: "shared-key-secret-0123456789",
    });
    expect(rotated.stderr).not.toMatch(/^error/m);
    expect(rotated.code).toBe(0);
    // The SharedKey secret too (review 66: it was dropped, and SharedKey-signed webhooks refused after the rotation).
    expect(JSON.parse(rotated.stdout).credentials).toMatchObject({
      twilioAuthToken: "fedcba9876543210fedcba9876543210",
      twilioSharedKeySecret: "shared-key-secret-0123456789",
    });
    // Another format's rotation takes none of them, whatever the environment holds.
    const other = /^id\s+(src_\S+)$/m.exec((await run(["sources", "create", "--name", "core", "--format", "simroot"], env)).stdout)?.[1];
    expect((await run(["sources", "rotate", other!], { ...env, SIMROOT_TWILIO_AUTH_TOKEN: "short" })).code).toBe(0);
    // And deleted: gone from then on.
    const deleted = await run(["sources", "delete", other!], env);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toContain(`deleted ${other}`);
    const gone = await run(["sources", "get", other!], env);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain("source.not_found");
  });

  it("creates and rotates a source with the sender's public key or trust anchors, as the API takes them", async () => {
    // The CLI could give neither: a simroot source signed with the sender's Ed25519 key could not be created, nor rotated
    // (a rotation without its new key is refused), and an eim source had no anchors, so it refused every notification.
    const { token, client } = await tenant();
    const env = { SIMROOT_URL: url, SIMROOT_API_KEY: token };
    const dir = await mkdtemp(join(tmpdir(), "simroot-cli-"));
    const raw = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(12);
    const created = await run(
      ["sources", "create", "--name", "core", "--format", "simroot", "--webhook-public-key", `whpk_${raw.toString("base64")}`, "--json"],
      env,
    );
    expect(created.stderr).not.toMatch(/^error/m);
    expect(created.code).toBe(0);
    const { source, credentials } = JSON.parse(created.stdout) as { source: { id: string }; credentials: Record<string, unknown> };
    expect(credentials).toEqual({ webhookPublicKey: `whpk_${raw.toString("base64")}` });
    expect((await run(["sources", "rotate", source.id], env)).stderr).toContain("source.credentials_required");
    // The sender's next key, from its PEM file.
    const pem = join(dir, "next.pem");
    await writeFile(pem, generateKeyPairSync("ed25519").publicKey.export({ format: "pem", type: "spki" }).toString());
    const rotated = await run(["sources", "rotate", source.id, "--webhook-public-key", pem, "--json"], env);
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.stdout).credentials.webhookPublicKey).toBe(await readFile(pem, "utf8"));

    const pki = createTestPki("Cli");
    const [ci, eum] = [join(dir, "ci.pem"), join(dir, "eum.pem")];
    await writeFile(ci, pki.ci.pem);
    await writeFile(eum, pki.eum.pem);
    const eim = await run(
      ["sources", "create", "--name", "eim", "--format", "eim", "--trust-anchor", ci, "--trust-anchor", eum, "--json"],
      env,
    );
    expect(eim.code).toBe(0);
    expect(JSON.parse(eim.stdout).credentials.trustAnchors).toEqual([pki.ci.pem, pki.eum.pem]);

    // Given to a format that does not take them, or unreadable: a usage error (exit 2), and nothing is created.
    const misplaced = await run(["sources", "create", "--name", "x", "--format", "camara", "--trust-anchor", ci], env);
    expect(misplaced.code).toBe(2);
    expect(misplaced.stderr).toContain("--trust-anchor is for format eim, not camara");
    const missing = await run(
      ["sources", "create", "--name", "x", "--format", "simroot", "--webhook-public-key", join(dir, "none.pem")],
      env,
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("cannot read");
    const skew = await run(["sources", "create", "--name", "x", "--format", "simroot", "--max-clock-skew", "soon"], env);
    expect(skew.code).toBe(2);
    expect((await client.get("/v1/sources", {})).items.map((listed: { name: string }) => listed.name).sort()).toEqual(["core", "eim"]);
  }, 120_000);

  it("exports the audit chain as JSON Lines to a file", async () => {
    const { token, client } = await tenant();
    await register(client);
    await register(client);
    const out = join(await mkdtemp(join(tmpdir(), "simroot-cli-")), "audit.jsonl");

    const exported = await run(["audit", "export", "--out", out], { SIMROOT_URL: url, SIMROOT_API_KEY: token });
    expect(exported.code).toBe(0);
    expect(exported.stderr).toContain(`wrote 3 audit records to ${out}`);
    const records = (await readFile(out, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { shard: number; seq: number; action: string });
    // Shard by shard (the tenant's creation on shard 0, first), each record once.
    expect(records[0]).toMatchObject({ shard: 0, seq: 1, action: "tenant.created" });
    expect(records.map((record) => record.action).sort()).toEqual(["device.registered", "device.registered", "tenant.created"]);
    expect(new Set(records.map((record) => `${record.shard}/${record.seq}`)).size).toBe(3);
  });

  it("changes tenant settings under If-Match and creates a key whose token works", async () => {
    const { token } = await tenant();
    const env = { SIMROOT_URL: url, SIMROOT_API_KEY: token };

    const changed = await run(["tenant", "settings", "--fail-mode", "open", "--allowed-countries", "fr,de", "--json"], env);
    expect(changed.stderr).toBe("");
    // The tenant item and the enforcement settings (the fail mode) both moved: the tenant's revision counts both.
    expect(JSON.parse(changed.stdout)).toMatchObject({ settings: { failMode: "open", allowedCountries: ["FR", "DE"] }, revision: 3 });

    const stale = await run(["tenant", "settings", "--imei-lock", "false", "--if-match", '"1"'], env);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/^error: request\.precondition_failed \(412\)/);

    const created = await run(["keys", "create", "--name", "ci", "--role", "viewer", "--json"], env);
    expect(created.code).toBe(0);
    const { key, token: viewerToken } = JSON.parse(created.stdout) as { key: { keyId: string; role: string }; token: string };
    expect(key.role).toBe("viewer");
    const asViewer = await run(["devices", "list", "--json"], { SIMROOT_URL: url, SIMROOT_API_KEY: viewerToken });
    expect(asViewer.code).toBe(0);
    const forbidden = await run(["keys", "list"], { SIMROOT_URL: url, SIMROOT_API_KEY: viewerToken });
    expect(forbidden.code).toBe(1);
    expect(forbidden.stderr).toContain("auth.forbidden");
    // A pep key bound to a site's view of the feed.
    const bound = await run(["keys", "create", "--name", "lyon", "--role", "pep", "--selector", "site=lyon", "--json"], env);
    expect([bound.code, JSON.parse(bound.stdout).key.selector]).toEqual([0, "site=lyon"]);
  });

  it("creates a policy from a file and decides a connection with it", async () => {
    const { token, client } = await tenant();
    const env = { SIMROOT_URL: url, SIMROOT_API_KEY: token };
    const device = await register(client);
    const rule = join(await mkdtemp(join(tmpdir(), "simroot-cli-")), "rule.json");
    await writeFile(
      rule,
      JSON.stringify({
        name: "Meters send telemetry",
        selector: { matchLabels: { fleet: "meters" } },
        destinations: [{ fqdn: "ingest.example.com", ports: [8883], protocol: "tcp" }],
        effect: "allow",
      }),
    );

    const created = await run(["policies", "create", "--file", rule, "--json"], env);
    expect(created.stderr).toBe("");
    const policy = JSON.parse(created.stdout) as { id: string };

    const allowed = await run(["decide", "--imsi", device.imsi!, "--dest-fqdn", "ingest.example.com", "--port", "8883"], env);
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toMatch(new RegExp(`^ALLOW  allow\\.rule \\(rule ${policy.id}\\)`));
    const denied = await run(["decide", "--imsi", device.imsi!, "--dest-fqdn", "ingest.example.com", "--port", "22", "--json"], env);
    expect(JSON.parse(denied.stdout)).toMatchObject({ allow: false, reason: "deny.default", deviceId: device.id });

    expect((await run(["policies", "delete", policy.id], env)).code).toBe(0);
    expect(JSON.parse((await run(["policies", "list", "--json"], env)).stdout)).toEqual({ items: [] });
  });

  it("creates an automation rule from a file, switches it to dry-run, lists it and removes it", { timeout: 90_000 }, async () => {
    const { token } = await tenant();
    const env = { SIMROOT_URL: url, SIMROOT_API_KEY: token };
    const file = join(await mkdtemp(join(tmpdir(), "simroot-cli-")), "rule.json");
    const pattern = { source: ["simroot"], "detail-type": ["anomaly.detected"] };
    await writeFile(file, JSON.stringify({ name: "contain", pattern, actions: [{ type: "quarantine" }] }));
    const created = await run(["rules", "create", "--file", file, "--json"], env);
    expect(created.stderr).toBe("");
    const rule = JSON.parse(created.stdout) as { id: string; dryRun: boolean };
    expect(rule.dryRun).toBe(false);
    expect(JSON.parse((await run(["rules", "dry-run", rule.id, "--json"], env)).stdout)).toMatchObject({
      id: rule.id,
      dryRun: true,
      revision: 2,
    });
    expect(JSON.parse((await run(["rules", "list", "--json"], env)).stdout).items).toEqual([
      expect.objectContaining({ id: rule.id, pattern }),
    ]);
    // The table names the role the rule fires as (what it may read) and, when its stored pattern fails a check, why.
    const table = (await run(["rules", "list"], env)).stdout.split("\n");
    expect(table[0]).toMatch(/\bROLE\s+PROBLEM\b/);
    expect(table.find((line) => line.startsWith(rule.id))).toMatch(/\badmin\b/);
    // A removal decided at the revision before the dry-run switch is refused (412), and removes nothing.
    const stale = await run(["rules", "delete", rule.id, "--if-match", '"1"'], env);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain("412");
    expect(JSON.parse((await run(["rules", "list", "--json"], env)).stdout).items).toHaveLength(1);
    expect((await run(["rules", "delete", rule.id], env)).code).toBe(0);
    expect(JSON.parse((await run(["rules", "list", "--json"], env)).stdout)).toEqual({ items: [] });
  });

  it("exits 2 with the usage for an unknown command or a missing argument", async () => {
    const unknown = await run(["frobnicate"], { SIMROOT_URL: url, SIMROOT_API_KEY: "x" });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command: frobnicate");
    expect(unknown.stderr).toContain("Usage: simroot <command> [options]");

    const missing = await run(["devices", "suspend", "dev_1"], { SIMROOT_URL: url, SIMROOT_API_KEY: "x" });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--reason is required");
    expect(missing.stderr).toContain("Usage: simroot devices suspend <id>");

    // A body file that cannot be read, or a port that is no number, is a usage error too (review 57: exit 1, a raw
    // ENOENT; and '' decided for port 0).
    const env = { SIMROOT_URL: url, SIMROOT_API_KEY: "x" };
    const unread = await run(["api", "createDevices", "--body-file", "/nonexistent/body.json"], env);
    expect([unread.code, unread.stderr]).toEqual([2, expect.stringContaining("cannot read /nonexistent/body.json")]);
    const noPort = await run(["decide", "--device", "dev_1", "--dest-fqdn", "x.example", "--port", ""], env);
    expect([noPort.code, noPort.stderr]).toEqual([2, expect.stringContaining("--port")]);
  });

  it("exits 1 printing the problem when the API refuses the key", async () => {
    const refused = await run(["devices", "list"], { SIMROOT_URL: url, SIMROOT_API_KEY: "sr_key_not_a_real_key" });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toMatch(/^error: auth\.invalid_key \(401\)/);

    const asJson = await run(["devices", "list", "--json"], { SIMROOT_URL: url, SIMROOT_API_KEY: "sr_key_not_a_real_key" });
    expect(JSON.parse(asJson.stderr)).toMatchObject({
      title: "auth.invalid_key",
      status: 401,
      type: "urn:simroot:problem:auth.invalid_key",
    });
  });

  it("runs as the installed bin, with help for every command", async () => {
    const help = await run(["--help"], {}, bin);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("devices register");
    const health = await run(["health", "--json", "--url", url], {}, bin);
    expect(health.code).toBe(0);
    expect(JSON.parse(health.stdout)).toMatchObject({ status: "ok" });
    const commandHelp = await run(["decide", "--help"], {}, bin);
    expect(commandHelp.stdout).toContain("--dest-fqdn <name>");
  });
});
