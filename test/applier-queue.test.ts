/**
 * The applier's queue, as AWS runs it (infra/bus.ts, core platform/limits.ts `applierQueue`): the rule that carries
 * reported facts targets an SQS queue, whose depth is ingestion's backlog, and Lambda hands the applier a batch of its
 * messages, each the event EventBridge delivered. What PutEvents carried on the wire (a loopback EventBridge) becomes
 * those messages here; the handler is the very module Lambda runs, over DynamoDB Local. A message that fails is
 * answered as a batch item failure, alone (SQS receives it again, then dead-letters it); the others are applied once,
 * however often SQS delivers them. (What happens near the function's timeout: functions/src/lib/consumer.test.ts.)
 */
import type { SQSEvent, SQSRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packReported, readDevice, type DomainEvent, type Ports } from "@simroot/core";
import { handlerFor } from "@simroot/functions/consumers/operator-events";
import { runningAs } from "@simroot/local/grants";
import { lambdaContext } from "@simroot/local/targets";
import { attachedIp, ingestedFacts } from "./support/ingested-facts.ts";
import { putOnTheWire, type PutEntry } from "./support/loopback-eventbridge.ts";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime?.stop());

const { attach, tenantWithDevices: withDevices } = ingestedFacts("src_queue", "20802", (n) => `10.78.0.${n}`);
const tenantWithDevices = (name: string, count: number) => withDevices(runtime.ports, name, count);

const queueArn = "arn:aws:sqs:us-east-1:123456789012:simroot-production-ApplierQueue";
/** The SQS message an SQS target receives for a put entry: EventBridge's event, whole, as the body. */
function message(body: string, receiveCount = 1): SQSRecord {
  return {
    messageId: crypto.randomUUID(),
    receiptHandle: "handle",
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(Date.now()),
      SenderId: "AIDAEVENTBRIDGE",
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: "us-east-1",
  };
}
const delivered = (entry: PutEntry) =>
  JSON.stringify({
    version: "0",
    id: crypto.randomUUID(),
    "detail-type": entry.DetailType,
    source: entry.Source,
    account: "123456789012",
    time: new Date().toISOString(),
    region: "us-east-1",
    resources: entry.Resources ?? [],
    detail: JSON.parse(entry.Detail),
  });

const applier = (ports: Ports) => {
  const handler = handlerFor(() => ports);
  return (records: SQSRecord[]) =>
    runningAs("operatorEvents", () => handler({ Records: records } satisfies SQSEvent as never, lambdaContext("operatorEvents")));
};

describe("the applier's queue", () => {
  it("applies a batch of what EventBridge delivered, answers only the messages that failed, and applies a redelivery once", async () => {
    const mine = await tenantWithDevices("queue-mine", 6);
    const theirs = await tenantWithDevices("queue-theirs", 1);
    const facts = mine.ids.map((_, n) => attach(mine.tenantId, n < 3 ? "req_a" : "req_b", n));
    const entries = await putOnTheWire(facts);
    expect(entries.length).toBe(2); // two requests, one packed entry each
    const good = entries.map((entry) => message(delivered(entry)));
    // An entry that packs a fact of another tenant (a forged put: ingestion never makes one), and a body that is no event.
    const own = attach(theirs.tenantId, "req_forged", 0);
    const forged = packReported([own, { ...own, id: `${own.id}x` }])[0]!;
    const forgedEntry = { ...forged, data: { ...forged.data, facts: [own, attach(mine.tenantId, "req_forged", 5)] } };
    const [forgedPut] = await putOnTheWire([forgedEntry as DomainEvent]);
    const refused = message(delivered(forgedPut!));
    // Not from the rule (only it may send): no retry could make it a fact, so it is deleted, not received again.
    const garbage = message("{not json");

    const apply = applier(runtime.ports);
    const answer = await apply([good[0]!, refused, good[1]!, garbage]);
    expect(answer).toEqual({ batchItemFailures: [{ itemIdentifier: refused.messageId }] });
    const ips = await Promise.all(mine.ids.map((id) => attachedIp(runtime.ports, mine.tenantId, id)));
    expect(ips).toEqual(mine.ids.map((_, n) => `10.78.0.${n}`));
    expect(await attachedIp(runtime.ports, theirs.tenantId, theirs.ids[0]!)).toBeUndefined();

    // SQS delivers at least once: the same message again changes nothing, and fails nothing.
    const before = await Promise.all(mine.ids.map(async (id) => (await readDevice(runtime.ports, mine.tenantId, id))?.device.revision));
    expect(await apply([message(good[1]!.body, 2)])).toEqual({ batchItemFailures: [] });
    const after = await Promise.all(mine.ids.map(async (id) => (await readDevice(runtime.ports, mine.tenantId, id))?.device.revision));
    expect(after).toEqual(before);
  });

  it("still takes one event invoked directly, as a redrive hands it back", async () => {
    const { tenantId, ids } = await tenantWithDevices("queue-redrive", 1);
    const [entry] = await putOnTheWire([attach(tenantId, "req_redrive", 0)]);
    const handler = handlerFor(() => runtime.ports);
    await runningAs("operatorEvents", () => handler(JSON.parse(delivered(entry!)), lambdaContext("operatorEvents")));
    expect(await attachedIp(runtime.ports, tenantId, ids[0]!)).toBe("10.78.0.0");
  });
});
