/**
 * A key revoked (or rotated) while a request of it waits for news: /v1/live, the streamed feed and the feed's long poll
 * authenticated once, at the start, and told the key the tenant's changes until their `wait` ended, up to 20 s (review
 * 109). Now each asks again (through the key cache: 1 s) before it tells the key anything.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
}, 60_000);
afterAll(() => runtime?.stop());

/** A pep key of the tenant, and the feed version its snapshot reads. */
async function pepAtHead(tenant: Awaited<ReturnType<typeof tenantClient>>, name: string) {
  const pep = (await tenant.call("POST", "/v1/keys", { name, role: "pep" })).json;
  const auth = { authorization: `Bearer ${pep.token}` };
  const snapshot = (await (await runtime.app.request("/v1/feed", { headers: auth })).json()) as { signed: { head: { version: number } } };
  return { keyId: pep.key.keyId as string, auth, version: snapshot.signed.head.version };
}

/** Reads the stream until `needle` shows or `ms` pass; what was read. */
async function readUntil(reader: ReadableStreamDefaultReader<string>, needle: string, ms: number, text = "") {
  const deadline = Date.now() + ms;
  while (!text.includes(needle) && Date.now() < deadline) {
    const next = await Promise.race([
      reader.read(),
      new Promise<{ value: undefined }>((resolve) => setTimeout(() => resolve({ value: undefined }), deadline - Date.now())),
    ]);
    text += next.value ?? "";
  }
  return text;
}

describe("a revoked key's waiting request (review 109)", () => {
  it("/v1/live stops telling a revoked viewer key the tenant's changes", async () => {
    const tenant = await tenantClient(runtime, "live-revoked");
    const viewer = (await tenant.call("POST", "/v1/keys", { name: "laptop", role: "viewer" })).json;
    const response = await runtime.app.request("/v1/live?wait=15", { headers: { authorization: `Bearer ${viewer.token}` } });
    expect(response.status).toBe(200);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    await readUntil(reader, "event: ready", 2000);
    expect((await tenant.call("DELETE", `/v1/keys/${viewer.key.keyId}`)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // past the key cache's 1 s
    expect((await runtime.app.request("/v1/devices", { headers: { authorization: `Bearer ${viewer.token}` } })).status).toBe(401);
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "234109000000001" })).json;
    const text = await readUntil(reader, device.id, 4000);
    await reader.cancel();
    expect(text).not.toContain(device.id);
  }, 30_000);

  it("the streamed feed stops sending a revoked pep key signed deltas", async () => {
    const tenant = await tenantClient(runtime, "feed-revoked");
    const { keyId, auth, version } = await pepAtHead(tenant, "site-a");
    const response = await runtime.app.request(`/v1/feed?since=${version}&wait=15`, {
      headers: { ...auth, accept: "text/event-stream" },
    });
    expect(response.status).toBe(200);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    expect((await tenant.call("DELETE", `/v1/keys/${keyId}`)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await runtime.app.request(`/v1/feed?since=${version}`, { headers: auth })).status).toBe(401);
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "234109000000002", labels: { site: "a" } })).json;
    const text = await readUntil(reader, device.id, 4000);
    await reader.cancel();
    expect(text).not.toContain(device.id); // the revoked key is sent the new device (its IMSI, labels) in a signed delta
  }, 30_000);

  it("the feed's long poll refuses a pep key revoked while it waited", async () => {
    const tenant = await tenantClient(runtime, "poll-revoked");
    const { keyId, auth, version } = await pepAtHead(tenant, "site-b");
    const polled = runtime.app.request(`/v1/feed?since=${version}&wait=10`, { headers: auth });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await tenant.call("DELETE", `/v1/keys/${keyId}`)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "234109000000003" })).json;
    const answer = await polled;
    const text = await answer.text();
    expect(text).not.toContain(device.id);
    expect(answer.status).toBe(401);
  }, 30_000);
});
