/**
 * The bus's dead letters through the API: a delivery a consumer refused is listed for its
 * tenant only (with the rule and the reason), and a redrive hands it back to that consumer,
 * audited. The same records the AWS drain function writes (functions/src/dead-letter-drain.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { domainEvent } from "@simroot/core";
import type { SQSEvent } from "aws-lambda";
import { handlerFor } from "../functions/src/dead-letter-drain.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

/** A reported fact the operator-events consumer refuses (no normalized event in it): dead-lettered at once. */
const garbled = (tenantId: string) => ({
  ...domainEvent(
    { tenantId, actor: "source:test", requestId: "req_dead" },
    "sim.attached",
    "imsi:208010000000001",
    { garbled: true },
    new Date(),
  ),
  origin: "ingest" as const,
});

describe("the bus's dead letters", () => {
  it("lists a refused delivery for its tenant only, and a redrive hands it back to that consumer, audited", async () => {
    const acme = await tenantClient(runtime, "acme");
    const other = await tenantClient(runtime, "other");
    const event = garbled(acme.tenant.id);
    expect(runtime.ports.redeliver).toBeDefined();
    await runtime.bus.publish([event]);
    await runtime.settled();

    const listed = await acme.call("GET", "/v1/bus/dead-letters");
    expect(listed.status).toBe(200);
    expect(listed.json.items).toEqual([
      expect.objectContaining({ id: `${event.id}~operatorEvents`, rule: "operatorEvents", eventId: event.id, eventType: "sim.attached" }),
    ]);
    expect(listed.json.items[0].reason).toMatch(/^rejected: .*not a normalized fact/);
    expect(listed.json.items[0].expiresAt - Date.parse(listed.json.items[0].deadAt) / 1000).toBeCloseTo(14 * 24 * 3600, -1);
    expect(listed.json.items[0]).not.toHaveProperty("envelope");
    expect((await other.call("GET", "/v1/bus/dead-letters")).json.items).toEqual([]);
    expect((await other.call("POST", `/v1/bus/dead-letters/${event.id}~operatorEvents/redrive`)).status).toBe(404);
    expect(runtime.bus.deadLetters().map((letter) => letter.eventId)).toContain(event.id);

    // Handed back to operatorEvents alone: it refuses it again, so it comes back as a new dead letter.
    const redriven = await acme.call("POST", `/v1/bus/dead-letters/${event.id}~operatorEvents/redrive`);
    expect(redriven.status, redriven.text).toBe(202);
    expect(redriven.json).toEqual({ id: `${event.id}~operatorEvents`, rule: "operatorEvents", redriven: true });
    await runtime.settled();
    const again = (await acme.call("GET", "/v1/bus/dead-letters")).json.items;
    expect(again.map((letter: { id: string }) => letter.id)).toEqual([`${event.id}~operatorEvents`]);
    const audit = (await acme.call("GET", "/v1/audit?limit=100")).json.items as { action: string; data: Record<string, unknown> }[];
    expect(audit.find((record) => record.action === "bus.dead_letter_redriven")?.data).toMatchObject({
      rule: "operatorEvents",
      eventId: event.id,
      eventType: "sim.attached",
    });
    expect((await acme.call("POST", "/v1/bus/dead-letters/evt_none~operatorEvents/redrive")).status).toBe(404);
  });

  it("in AWS, the drain records what reaches a rule's SQS dead-letter queue, and leaves in the queue what it cannot read", async () => {
    const acme = await tenantClient(runtime, "drained");
    const event = garbled(acme.tenant.id);
    const envelope = {
      version: "0",
      id: "bus-1",
      "detail-type": event.type,
      source: "simroot.ingest",
      account: "1",
      time: event.time,
      region: "eu-west-1",
      resources: [],
      detail: event,
    };
    const queueArn = "arn:aws:sqs:eu-west-1:111122223333:simroot-prod-OperatorEventsDeadLetterQueue";
    const message = (messageId: string, body: string) => ({
      messageId,
      receiptHandle: messageId,
      body,
      attributes: {},
      messageAttributes: {},
      md5OfBody: "",
      eventSource: "aws:sqs",
      eventSourceARN: queueArn,
      awsRegion: "eu-west-1",
    });
    const drain = handlerFor(
      () => runtime.ports,
      () => ({ [queueArn]: "operatorEvents" }),
    );
    const invocationRecord = JSON.stringify({
      requestContext: { condition: "RetriesExhausted", approximateInvokeCount: 3 },
      requestPayload: envelope,
      responsePayload: { errorType: "SimrootError", errorMessage: "not a normalized fact" },
    });
    const answer = await drain({ Records: [message("m1", invocationRecord), message("m2", "garbage")] } as SQSEvent);
    expect(answer.batchItemFailures).toEqual([{ itemIdentifier: "m2" }]);
    expect((await acme.call("GET", "/v1/bus/dead-letters")).json.items).toEqual([
      expect.objectContaining({ rule: "operatorEvents", eventId: event.id, attempts: 3, reason: "SimrootError: not a normalized fact" }),
    ]);
  });
});
