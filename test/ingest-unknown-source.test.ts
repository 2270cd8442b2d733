/**
 * A webhook to a source id that does not exist is answered as one to a source that refuses its credentials (review 83):
 * it answered 404 where an existing source answered 401, so anybody could tell which source ids exist. Both are the
 * same 401, byte for byte but the request id, and cost the same work: the same reads, every format's check.
 */
import { createHmac } from "node:crypto";
import { newId } from "@simroot/core";
import { adapters } from "@simroot/core/ingest/adapters/index";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const formats = ["simroot", "camara", "nef", "datastreamer", "supersim", "eim"] as const;
const body = JSON.stringify([{ specversion: "1.0", id: "1", source: "s", type: "t" }]);
const wrongSecret = `whsec_${Buffer.from("not the secret of any source").toString("base64")}`;

/** Requests without the source's credentials, shaped as each format's senders shape theirs. */
const unauthenticated: Record<string, (path: string) => Record<string, string>> = {
  "no credentials": () => ({}),
  "a wrong bearer token": () => ({ authorization: "Bearer not-the-token-of-any-source" }),
  "wrong Basic credentials": () => ({ authorization: `Basic ${Buffer.from("simroot-x:not-the-password").toString("base64")}` }),
  "a wrong Standard Webhooks signature": () => standardWebhookHeaders(wrongSecret, body),
  "a wrong Twilio signature": (path) => ({
    "x-twilio-signature": createHmac("sha1", "not-the-auth-token").update(`http://localhost${path}`).digest("base64"),
  }),
};

async function existingSource(format: (typeof formats)[number]) {
  const tenant = await tenantClient(runtime, `known-${format}`);
  const created = await tenant.call("POST", "/v1/sources", {
    name: format,
    format,
    ...(format === "supersim" ? { credentials: { twilioAuthToken: "f0e1d2c3b4a5968778695a4b3c2d1e0f" } } : {}),
  });
  expect(created.status, created.text).toBe(201);
  return created.json.source.id as string;
}

async function post(sourceId: string, headers: (path: string) => Record<string, string>) {
  const path = `/v1/ingest/${sourceId}?bodySHA256=${"0".repeat(64)}`;
  const response = await runtime.app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers(path) },
    body,
  });
  const requestId = response.headers.get("x-request-id")!;
  const answered = Object.fromEntries([...response.headers].filter(([name]) => name !== "x-request-id"));
  // The request id, and the id the sender chose in the path it posted to (`instance`), are the only differences allowed.
  const text = (await response.text()).replaceAll(requestId, "<request id>").replaceAll(sourceId, "<source id>");
  return { status: response.status, headers: answered, text };
}

describe("a source id that does not exist is answered as a source refusing credentials", () => {
  it.each(formats)("%s: the same 401, byte for byte but the request id", async (format) => {
    const known = await existingSource(format);
    for (const unknown of [newId("source"), "src_not-even-an-id"]) {
      for (const [shape, headers] of Object.entries(unauthenticated)) {
        // Twice: the first reads the source, the second finds it cached.
        for (const attempt of [1, 2]) {
          const [real, none] = [await post(known, headers), await post(unknown, headers)];
          expect([shape, attempt, real.status]).toEqual([shape, attempt, 401]);
          expect([shape, attempt, none]).toEqual([shape, attempt, real]);
        }
      }
    }
  });

  it("logs why each was refused, under the request id the answer names", async () => {
    const known = await existingSource("simroot");
    const unknown = newId("source");
    const logged = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      const reasons: unknown[] = [];
      for (const sourceId of [known, unknown]) {
        logged.mockClear();
        const response = await runtime.app.request(`/v1/ingest/${sourceId}`, {
          method: "POST",
          headers: standardWebhookHeaders(wrongSecret, body, "msg_stale", Math.floor(Date.now() / 1000) - 600),
          body,
        });
        const requestId = response.headers.get("x-request-id");
        const lines = logged.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
        reasons.push(lines.filter((line) => line["message"] === "webhook not authenticated" && line["requestId"] === requestId));
      }
      expect(reasons).toEqual([
        [expect.objectContaining({ sourceId: known, reason: "webhook-timestamp is more than 5 minutes from now" })],
        [expect.objectContaining({ sourceId: unknown, reason: "No ingestion source has this id" })],
      ]);
    } finally {
      logged.mockRestore();
    }
  });

  it("does the same work for a source that does not exist: the same reads, and every format's check", async () => {
    const known = await existingSource("simroot");
    const unknown = newId("source");
    const send = vi.spyOn(runtime.ports.db, "send");
    const checks = formats.map((format) => vi.spyOn(adapters[format], "authenticate"));
    try {
      const workOf = async (sourceId: string) => {
        send.mockClear();
        for (const check of checks) check.mockClear();
        expect((await post(sourceId, unauthenticated["a wrong Standard Webhooks signature"]!)).status).toBe(401);
        // Reads of sources (the local runtime's readers of streams and outboxes read beside it).
        const reads = send.mock.calls.filter(([command]) =>
          String((command.input as { Key?: { pk?: unknown } }).Key?.pk).startsWith("SRC#"),
        ).length;
        return { reads, checks: Object.fromEntries(formats.map((format, n) => [format, checks[n]!.mock.calls.length])) };
      };
      // Read, then cached: the same either way, whether the source exists or not.
      const real = [await workOf(known), await workOf(known)];
      const none = [await workOf(unknown), await workOf(unknown)];
      // Each try runs every check a source may make: simroot's two (v1 HMAC, v1a Ed25519), one each else. Not cached,
      // one try with what the store answered; cached, the cached try and a fresh one (review 93: the store was read
      // twice when nothing was cached, and every check run twice).
      const once = { simroot: 2, camara: 1, nef: 1, datastreamer: 1, supersim: 1, eim: 1 };
      const twice = { simroot: 4, camara: 2, nef: 2, datastreamer: 2, supersim: 2, eim: 2 };
      expect(real).toEqual([
        { reads: 1, checks: once },
        { reads: 1, checks: twice },
      ]);
      expect(none).toEqual(real);
    } finally {
      send.mockRestore();
      for (const check of checks) check.mockRestore();
    }
  });
});
