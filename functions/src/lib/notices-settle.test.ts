/**
 * A Lambda is frozen as soon as it returns: whatever it still sends in the background waits for its next invocation.
 * A commit's feed notice is sent in the background (the ledger's commit listener), so both kinds of entry point wait
 * for it before they return, at most `noticeSettleMs`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import type { Context } from "aws-lambda";
import { coalescing, noticeSettleMs, type BusEnvelope, type Ports } from "@simroot/core";
import { describe, expect, it } from "vitest";
import { consumer } from "./consumer.ts";
import { lambdaHandler } from "./lambda-http.ts";

/** A notifier whose publish takes `ms`: what it has finished sending. */
function slowNotifier(ms: number) {
  const sent: number[] = [];
  const notifier = coalescing(async (notice) => {
    await sleep(ms);
    sent.push(notice.version);
  });
  return { sent, notifier, ports: () => ({ feedNotifier: notifier }) as unknown as Ports };
}

const envelope = { id: "e1", "detail-type": "sim.attached", detail: { id: "e1", tenantId: "ten_a" } } as unknown as BusEnvelope;
const context = { awsRequestId: "r1", functionName: "f" } as Context;
const httpEvent = {
  version: "2.0",
  rawPath: "/",
  rawQueryString: "",
  headers: {},
  requestContext: { http: { method: "POST", path: "/" } },
  isBase64Encoded: false,
} as unknown as APIGatewayProxyEventV2;

describe("a Lambda that committed", () => {
  it("a consumer returns only once the notices its commits started are sent, failed or not", async () => {
    const { sent, notifier, ports } = slowNotifier(150);
    const handler = consumer("t", async () => void notifier.publish({ tenantId: "ten_a", version: 1 }), ports);
    await handler(envelope, context);
    expect(sent).toEqual([1]);
    const failing = consumer(
      "t",
      async () => {
        void notifier.publish({ tenantId: "ten_a", version: 2 });
        throw new Error("boom");
      },
      ports,
    );
    await expect(failing(envelope, context)).rejects.toThrow("boom");
    expect(sent).toEqual([1, 2]);
  });

  it("an API function answers only once they are sent", async () => {
    const { sent, notifier, ports } = slowNotifier(150);
    const handler = lambdaHandler(
      async () => {
        void notifier.publish({ tenantId: "ten_a", version: 7 });
        return new Response("{}", { headers: { "content-type": "application/json" } });
      },
      async () => ports().feedNotifier?.settled?.(noticeSettleMs),
    );
    expect((await handler(httpEvent)).statusCode).toBe(200);
    expect(sent).toEqual([7]);
  });

  it("waits at most noticeSettleMs for a publish that hangs, and a notice that fails never replaces the outcome", async () => {
    const notifier = coalescing(() => new Promise<void>(() => {}));
    const ports = () => ({ feedNotifier: notifier }) as unknown as Ports;
    const handler = consumer("t", async () => void notifier.publish({ tenantId: "ten_a", version: 1 }), ports);
    const started = Date.now();
    await handler(envelope, context);
    expect(Date.now() - started).toBeGreaterThanOrEqual(noticeSettleMs - 50);
    expect(Date.now() - started).toBeLessThan(noticeSettleMs + 1_000);
    const answering = lambdaHandler(
      async () => new Response("{}", { headers: { "content-type": "application/json" } }),
      async () => {
        throw new Error("the notifier broke");
      },
    );
    expect((await answering(httpEvent)).statusCode).toBe(200);
  });
});
