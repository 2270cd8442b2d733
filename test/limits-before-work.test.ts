import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Schema } from "@simroot/sdk";
import { Webhook } from "standardwebhooks";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const chunk = new Uint8Array(64 * 1024).fill(0x20);

/** A lazily produced body of `chunks` x 64 KiB that counts how many chunks the server pulled. */
function countedBody(chunks: number) {
  const counter = { pulled: 0 };
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (counter.pulled >= chunks) return controller.close();
        counter.pulled += 1;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, counter };
}

async function post(path: string, body: ReadableStream<Uint8Array>, headers: Record<string, string>) {
  const init = { method: "POST", body, headers: { "content-type": "application/json", ...headers }, duplex: "half" };
  const response = await runtime.app.request(path, init as RequestInit);
  await response.text();
  return response;
}

describe("limits before work", () => {
  it("reads no body of an unauthenticated POST, even with an Idempotency-Key", async () => {
    const { stream, counter } = countedBody(160); // 10 MiB
    const response = await post("/v1/devices", stream, { "idempotency-key": "k-1" });
    expect(response.status).toBe(401);
    expect(counter.pulled).toBeLessThanOrEqual(1);
  });

  it("stops reading an authenticated body at the size limit (413), not at its end", async () => {
    const acme = await tenantClient(runtime);
    const { stream, counter } = countedBody(160);
    const response = await post("/v1/devices", stream, { authorization: `Bearer ${acme.token}`, "idempotency-key": "k-2" });
    expect(response.status).toBe(413);
    expect(counter.pulled).toBeLessThan(40);
  });

  it("refuses a declared oversized Content-Length before reading anything", async () => {
    const acme = await tenantClient(runtime);
    const { stream, counter } = countedBody(160);
    const headers = { authorization: `Bearer ${acme.token}`, "content-length": String(160 * chunk.length) };
    const response = await post("/v1/devices", stream, headers);
    expect(response.status).toBe(413);
    expect(counter.pulled).toBeLessThanOrEqual(1);
  });

  it("does not share Idempotency-Key records between the unauthenticated webhook senders of two tenants", async () => {
    const send = async (name: string) => {
      const tenant = await tenantClient(runtime, name);
      const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "feed", format: "simroot" })).json;
      const body = JSON.stringify({
        type: "device.reachability-changed",
        dedupeKey: `reach-${name}`,
        occurredAt: "2026-11-22T06:00:00.000Z",
        device: { imsi: "208011234567891" },
        sourceType: "reach",
        data: { reachable: true },
      });
      const sentAt = new Date();
      const headers = {
        "webhook-id": `msg_${name}`,
        "webhook-timestamp": String(Math.floor(sentAt.getTime() / 1000)),
        "webhook-signature": new Webhook(credentials.webhookSecret).sign(`msg_${name}`, sentAt, body),
      };
      const response = await runtime.app.request(source.ingestPath, {
        method: "POST",
        body,
        headers: { ...headers, "content-type": "application/json", "idempotency-key": "shared-key" },
      });
      return {
        source,
        status: response.status,
        replayed: response.headers.get("idempotent-replayed"),
        json: (await response.json()) as Schema<"IngestResult">,
      };
    };
    const first = await send("acme");
    const second = await send("globex");
    expect(first.status).toBe(202);
    expect(second.replayed).toBeNull();
    expect(second.json.sourceId).toBe(second.source.id);
  });
});

describe("Idempotency-Key leases", () => {
  it("lets a retry act once the lease of a request that crashed mid-way has run out", async () => {
    const { claimIdempotencyKey, idempotencyLeaseSeconds, idempotencyLeaseSkewSeconds } = await import("@simroot/core");
    const started = runtime.ports.now();
    const at = (seconds: number) => ({ ...runtime.ports, now: () => new Date(started.getTime() + seconds * 1000) });
    expect((await claimIdempotencyKey(at(0), "key:crash", "k", "fp")).kind).toBe("claimed");
    // The first request never completes (its process died): a prompt retry still waits ...
    expect((await claimIdempotencyKey(at(5), "key:crash", "k", "fp")).kind).toBe("in_progress");
    // ... and one just past the lease by its own clock: another instance's clock may be behind the first's (review 105).
    expect((await claimIdempotencyKey(at(idempotencyLeaseSeconds + 1), "key:crash", "k", "fp")).kind).toBe("in_progress");
    // But not for 24 hours: after the lease and the instances' clock margin the retry takes the key over and acts.
    const over = idempotencyLeaseSeconds + idempotencyLeaseSkewSeconds + 1;
    expect((await claimIdempotencyKey(at(over), "key:crash", "k", "fp")).kind).toBe("claimed");
  });
});
