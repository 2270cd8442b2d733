/**
 * The bus's dead letters through the API: a delivery a consumer refused is listed for its
 * tenant only (with the rule and the reason), and a redrive hands it back to that consumer,
 * audited. The same records the AWS drain function writes (functions/src/dead-letter-drain.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { domainEvent, recordDeadLetter } from "@simroot/core";
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

/** A garbled fact of the tenant published and dead-lettered by the operator-events consumer: its letter's id and listing. */
async function deadLettered(tenant: Awaited<ReturnType<typeof tenantClient>>) {
  const event = garbled(tenant.tenant.id);
  await runtime.bus.publish([event]);
  await runtime.settled();
  const id = `${event.id}~operatorEvents`;
  const listed = (await tenant.call("GET", "/v1/bus/dead-letters")).json.items as { id: string; deadAt: string }[];
  const letter = listed.find((each) => each.id === id);
  if (!letter) throw new Error(`no dead letter ${id}`);
  return { id, letter };
}

/** The tenant's audit records of redrives. */
const redriveRecords = async (tenant: Awaited<ReturnType<typeof tenantClient>>) =>
  ((await tenant.call("GET", "/v1/audit?limit=100")).json.items as { action: string }[]).filter(
    (record) => record.action === "bus.dead_letter_redriven",
  );

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

  it("keeps a letter whose hand-back fails, unaudited, and redrives it once the consumer can be reached (review 159)", async () => {
    // The letter was deleted and its redrive audited before the hand-back; a failed hand-back put it back, but a put-back
    // that failed too (its error swallowed), or a function killed between the two, lost the event: its only copy.
    const acme = await tenantClient(runtime, "redrive-fails");
    const { id, letter: before } = await deadLettered(acme);
    expect(before).toMatchObject({ id });

    const redeliver = runtime.ports.redeliver!;
    const send = runtime.ports.db.send.bind(runtime.ports.db);
    let putBacks = 0;
    runtime.ports.redeliver = async () => {
      throw new Error("Lambda Invoke: rate exceeded");
    };
    // The store refuses to put a letter back, as a throttled or timed-out write would.
    runtime.ports.db.send = (async (command: { constructor: { name: string }; input: { ConditionExpression?: string } }) => {
      if (command.constructor.name === "PutCommand" && command.input.ConditionExpression === "attribute_not_exists(pk)") {
        putBacks++;
        throw new Error("ProvisionedThroughputExceededException");
      }
      return send(command as never);
    }) as typeof runtime.ports.db.send;
    try {
      const failed = await acme.call("POST", `/v1/bus/dead-letters/${id}/redrive`);
      expect([failed.status, failed.json.type, failed.headers.get("retry-after")]).toEqual([
        503,
        "urn:simroot:problem:dead_letter.unavailable",
        expect.any(String),
      ]);
    } finally {
      runtime.ports.redeliver = redeliver;
      runtime.ports.db.send = send as typeof runtime.ports.db.send;
    }
    expect(putBacks).toBe(0);
    // Still listed as it was, and not audited as redriven.
    expect((await acme.call("GET", "/v1/bus/dead-letters")).json.items).toEqual([before]);
    expect(await redriveRecords(acme)).toEqual([]);

    // The consumer reachable again: handed back (it refuses it again, so a new letter stands at the same id), audited once.
    const redriven = await acme.call("POST", `/v1/bus/dead-letters/${id}/redrive`);
    expect(redriven.status, redriven.text).toBe(202);
    await runtime.settled();
    const again = (await acme.call("GET", "/v1/bus/dead-letters")).json.items;
    expect(again.map((letter: { id: string }) => letter.id)).toEqual([id]);
    expect(again[0].deadAt).not.toBe(before.deadAt);
    expect(await redriveRecords(acme)).toHaveLength(1);
  });

  it("keeps the new letter of a hand-back that failed again at once, and audits the redrive once (review 159)", async () => {
    // Handed back before the letter is forgotten: a consumer that fails again at once puts a new letter at the same id
    // (a new `deadAt`) before the redrive forgets the one it read, and the forgetting must not remove the new one.
    const acme = await tenantClient(runtime, "redrive-replaced");
    const { id, letter: before } = await deadLettered(acme);
    const redeliver = runtime.ports.redeliver!;
    runtime.ports.redeliver = async (rule, envelope) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await recordDeadLetter(runtime.ports, { rule, reason: "rejected: again", envelope });
    };
    try {
      const redriven = await acme.call("POST", `/v1/bus/dead-letters/${id}/redrive`);
      expect(redriven.status, redriven.text).toBe(202);
    } finally {
      runtime.ports.redeliver = redeliver;
    }
    const [after] = (await acme.call("GET", "/v1/bus/dead-letters")).json.items;
    expect(after).toMatchObject({ id, reason: "rejected: again" });
    expect(after.deadAt).not.toBe(before.deadAt);
    expect(await redriveRecords(acme)).toHaveLength(1);
  });

  it("refuses to redrive a letter whose event is older than its consumers remember events by id (review 159)", async () => {
    // Letters stay 14 days; consumers know an event they took by its id for 7 (a rule's firing, a detector's finding):
    // handed back later, a rule that had fired on it fired again (a device reinstated since was suspended again).
    const acme = await tenantClient(runtime, "redrive-old");
    const old = {
      ...domainEvent(
        { tenantId: acme.tenant.id, actor: "source:test", requestId: "req_dead_old" },
        "sim.attached",
        "imsi:208010000000002",
        { garbled: true },
        new Date(Date.now() - 6.5 * 24 * 3600 * 1000),
      ),
      origin: "ingest" as const,
    };
    await runtime.bus.publish([old]);
    await runtime.settled();
    const id = `${old.id}~operatorEvents`;
    const refused = await acme.call("POST", `/v1/bus/dead-letters/${id}/redrive`);
    expect([refused.status, refused.json.type]).toEqual([409, "urn:simroot:problem:dead_letter.too_old"]);
    expect(refused.json.detail).toMatch(/older than 6 days/);
    // An event whose time cannot be read is refused the same way (review 161: it was handed back).
    const timeless = { ...garbled(acme.tenant.id), time: "not a time" };
    await runtime.bus.publish([timeless]);
    await runtime.settled();
    const unread = await acme.call("POST", `/v1/bus/dead-letters/${timeless.id}~operatorEvents/redrive`);
    expect([unread.status, unread.json.type]).toEqual([409, "urn:simroot:problem:dead_letter.too_old"]);
    // Nothing changed: still listed, nothing audited.
    expect((await acme.call("GET", "/v1/bus/dead-letters")).json.items.map((letter: { id: string }) => letter.id).sort()).toEqual(
      [id, `${timeless.id}~operatorEvents`].sort(),
    );
    expect(await redriveRecords(acme)).toEqual([]);
  });
});
