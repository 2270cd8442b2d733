/**
 * Redrive in AWS up to the network boundary: the real @aws-sdk/client-lambda client (SigV4 and
 * all) invokes a loopback server answering Lambda's Invoke REST API
 * (`POST /2015-03-31/functions/<name>/invocations`). AWS itself is not exercised here.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BusEnvelope } from "./envelope.ts";
import { deadLetterOfMessage } from "./dead-letter-record.ts";
import { lambdaRedeliver } from "./lambda-redeliver.ts";

const invoked: { path: string; type: string | undefined; body: string }[] = [];
let server: Server;
let client: LambdaClient;

beforeAll(async () => {
  server = createServer(async (request, response) => {
    let body = "";
    for await (const chunk of request) body += chunk;
    invoked.push({ path: request.url ?? "", type: request.headers["x-amz-invocation-type"] as string | undefined, body });
    if (!request.url?.includes("simroot-prod-Automation")) {
      response.writeHead(404, { "content-type": "application/json", "x-amzn-errortype": "ResourceNotFoundException" });
      return void response.end(JSON.stringify({ Type: "User", message: "Function not found" }));
    }
    response.writeHead(202).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  client = new LambdaClient({
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    region: "eu-west-1",
    credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
  });
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const envelope = {
  version: "0",
  id: "bus-1",
  "detail-type": "anomaly.detected",
  source: "simroot",
  account: "111122223333",
  time: "2026-12-02T10:00:00Z",
  region: "eu-west-1",
  resources: [],
  detail: {
    id: "evt_1",
    type: "anomaly.detected",
    tenantId: "ten_a",
    subject: "dev_1",
    time: "2026-12-02T10:00:00Z",
    actor: "x",
    requestId: "r",
    data: {},
  },
} as unknown as BusEnvelope;

describe("redrive through Lambda", () => {
  it("invokes the rule's consumer asynchronously with the event, as EventBridge does", async () => {
    await lambdaRedeliver({ automation: "simroot-prod-AutomationFunction" }, client)("automation", envelope);
    expect(invoked.at(-1)).toMatchObject({ path: "/2015-03-31/functions/simroot-prod-AutomationFunction/invocations", type: "Event" });
    expect(JSON.parse(invoked.at(-1)!.body)).toEqual(envelope);
  });

  it("fails for a rule without a known function, and with Lambda's error for one Lambda does not know", async () => {
    const redeliver = lambdaRedeliver({ webhooks: "simroot-prod-Gone" }, client);
    await expect(redeliver("automation", envelope)).rejects.toThrow(/no consumer function/);
    await expect(redeliver("webhooks", envelope)).rejects.toMatchObject({ name: "ResourceNotFoundException" });
  });
});

describe("dead letters as SQS holds them", () => {
  it("reads Lambda's on-failure invocation record, EventBridge's own dead letter and what the applier's queue moved", () => {
    const fromLambda = JSON.stringify({
      version: "1.0",
      timestamp: "2026-12-02T10:00:05Z",
      requestContext: {
        requestId: "req",
        functionArn: "arn:aws:lambda:eu-west-1:1:function:f",
        condition: "RetriesExhausted",
        approximateInvokeCount: 3,
      },
      requestPayload: envelope,
      responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
      responsePayload: { errorType: "ConditionalCheckFailedException", errorMessage: "The conditional request failed", trace: [] },
    });
    expect(deadLetterOfMessage(fromLambda)).toEqual({
      reason: "ConditionalCheckFailedException: The conditional request failed",
      attempts: 3,
      envelope,
    });
    expect(
      deadLetterOfMessage(JSON.stringify(envelope), {
        ERROR_CODE: { stringValue: "SDK_CLIENT_ERROR" },
        ERROR_MESSAGE: { stringValue: "Unable to invoke Lambda function" },
        RETRY_ATTEMPTS: { stringValue: "185" },
      }),
    ).toEqual({ reason: "SDK_CLIENT_ERROR: Unable to invoke Lambda function", attempts: 185, envelope });
    // The applier's queue moves the event itself once it was received as often as it allows: no attributes.
    expect(deadLetterOfMessage(JSON.stringify(envelope), {}, "operatorEvents")).toEqual({
      reason: "ConsumerFailed: the applier's queue gave up after 5 receives (failed, unfinished or throttled)",
      attempts: 5,
      envelope,
    });
    // Another rule's queue gets events only from EventBridge, with its attributes.
    expect(deadLetterOfMessage(JSON.stringify(envelope), {}, "automation")?.reason).toBe("EventBridgeDeliveryFailed: not delivered");
    expect(deadLetterOfMessage("not json")).toBeUndefined();
    expect(deadLetterOfMessage(JSON.stringify({ hello: "world" }))).toBeUndefined();
  });
});
