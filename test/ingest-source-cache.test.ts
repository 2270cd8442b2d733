/**
 * The ingestion endpoint's cache of sources (review 89): a spray of requests naming random ids that name no source
 * evicted the sources senders really use (one map of 10,000, emptied when full), so each real source was read from
 * DynamoDB again. Unknown ids now fill a small cache of their own: a source a request authenticated with stays cached.
 * The clock is held still (only `Date`), so that the 5 s an entry is kept cannot lapse while the spray runs.
 */
import { newId } from "@simroot/core";
import { maxUnverifiedSources, maxVerifiedSources } from "@simroot/core/ingest/source";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { countSourceReads } from "./support/source-reads.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());
afterEach(() => vi.useRealTimers());

const body = JSON.stringify([
  {
    type: "sim.detached",
    dedupeKey: "cache-1",
    occurredAt: "2026-11-22T06:01:00Z",
    device: { imsi: "208011234567890" },
    sourceType: "t",
    data: {},
  },
]);

const post = (path: string, headers: Record<string, string>) =>
  runtime.app.request(path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });

describe("the ingestion endpoint's cache of sources", () => {
  it("keeps a source its sender uses while requests naming random unknown ids pour in", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const tenant = await tenantClient(runtime, "cache-spray");
    const created = await tenant.call("POST", "/v1/sources", { name: "feed", format: "simroot" });
    expect(created.status).toBe(201);
    const { source, credentials } = created.json;
    const reads = countSourceReads(runtime, source.id);
    try {
      expect((await post(source.ingestPath, standardWebhookHeaders(credentials.webhookSecret, body))).status).toBe(202);
      expect(reads.counted.reads).toBe(1);
      // More random ids than either cache holds, each refused as a source refusing credentials.
      const spray = Math.max(maxVerifiedSources, maxUnverifiedSources) + 1;
      // Each refusal is logged (one line each): not here.
      vi.spyOn(console, "log").mockImplementation(() => {});
      for (let sent = 0; sent < spray; sent += 25) {
        const answers = await Promise.all(Array.from({ length: 25 }, () => post(`/v1/ingest/${newId("source")}`, {})));
        expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 401));
      }
      reads.counted.reads = 0;
      expect((await post(source.ingestPath, standardWebhookHeaders(credentials.webhookSecret, body))).status).toBe(202);
      expect(reads.counted.reads).toBe(0);
    } finally {
      reads.stop();
      vi.restoreAllMocks();
    }
  }, 300_000);

  it("reads the store once for a refused request when it read it for that request already (review 93)", async () => {
    // Credentials were checked with the cached source, then once more with a fresh read before refusing (they may have
    // rotated). When the first check read the store itself (nothing cached), the second read the same item again and
    // ran every format's check over the body again: twice the reads and the CPU for each request naming a new id.
    const tenant = await tenantClient(runtime, "cache-refusals");
    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "feed", format: "simroot" })).json;
    const wrong = standardWebhookHeaders(`whsec_${Buffer.from("not this source's secret").toString("base64")}`, body);
    const unknown = newId("source");
    const reads = [countSourceReads(runtime, unknown), countSourceReads(runtime, source.id)];
    try {
      expect((await post(`/v1/ingest/${unknown}`, wrong)).status).toBe(401);
      expect((await post(source.ingestPath, wrong)).status).toBe(401);
      expect(reads.map((read) => read.counted.reads)).toEqual([1, 1]);
      // Cached now: the cached check, and a fresh read before refusing, for the unknown id and the source alike.
      expect((await post(`/v1/ingest/${unknown}`, wrong)).status).toBe(401);
      expect((await post(source.ingestPath, wrong)).status).toBe(401);
      expect(reads.map((read) => read.counted.reads)).toEqual([2, 2]);
      // And the right credentials, cached or not, authenticate.
      expect((await post(source.ingestPath, standardWebhookHeaders(credentials.webhookSecret, body))).status).toBe(202);
    } finally {
      for (const read of reads) read.stop();
    }
  });
});
