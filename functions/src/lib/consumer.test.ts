/**
 * A consumer invoked by the applier's queue with a batch: what it answers near the function's timeout. A message still
 * unfinished is answered as failed (received again later), so the batch returns in time and its finished messages are
 * deleted: a timeout would have every message of the batch received again, and count a receive against each.
 */
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import type { BusEnvelope } from "@simroot/core";
import { describe, expect, it } from "vitest";
import { batchDeadlineMarginMs, consumer } from "./consumer.ts";

const record = (id: string): SQSRecord =>
  ({
    messageId: `m-${id}`,
    body: JSON.stringify({ "detail-type": "facts.reported", source: "simroot.ingest", detail: { id, tenantId: "ten_a" } }),
    attributes: { ApproximateReceiveCount: "1" },
  }) as unknown as SQSRecord;
const contextWith = (remainingMs: number) => {
  const deadline = Date.now() + remainingMs;
  return { awsRequestId: "r1", functionName: "f", getRemainingTimeInMillis: () => deadline - Date.now() } as Context;
};

describe("a consumer reading the applier's queue", () => {
  it("answers the messages unfinished near the timeout as failed, and returns in time with the others done", async () => {
    const done: string[] = [];
    const handler = consumer("t", async (envelope: BusEnvelope) => {
      if (envelope.detail.id === "stuck") await new Promise(() => {}); // a store that never answers
      done.push(envelope.detail.id);
    });
    const started = Date.now();
    const answer = (await handler(
      { Records: [record("a"), record("stuck"), record("b")] } as SQSEvent,
      contextWith(batchDeadlineMarginMs + 300),
    )) as SQSBatchResponse;
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: "m-stuck" }] });
    expect(done.sort()).toEqual(["a", "b"]);
    expect(Date.now() - started).toBeLessThan(batchDeadlineMarginMs);
  });

  it("deletes a message that carries no event, and answers a failed one", async () => {
    const handler = consumer("t", async (envelope: BusEnvelope) => {
      if (envelope.detail.id === "bad") throw new Error("refused");
    });
    const unreadable = { ...record("x"), messageId: "m-unreadable", body: "[]" };
    const answer = await handler({ Records: [unreadable, record("bad"), record("ok")] } as SQSEvent, contextWith(60_000));
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: "m-bad" }] });
  });
});
