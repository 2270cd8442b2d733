/**
 * The applier queue's depth up to the network boundary: the real @aws-sdk/client-sqs client
 * (SigV4, the AWS JSON 1.0 protocol SQS speaks) against a loopback server answering
 * GetQueueAttributes. What is not exercised is SQS itself.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqsBacklog } from "./backlog.ts";

const queueUrl = "https://sqs.eu-west-1.amazonaws.com/111122223333/simroot-applier";
const requests: { target: string; authorization: string; body: Record<string, unknown> }[] = [];
let depth = { visible: 0, inFlight: 0 };
let server: Server;
let endpoint: string;

beforeAll(async () => {
  server = createServer(async (request, response) => {
    let text = "";
    for await (const chunk of request) text += chunk;
    const body = JSON.parse(text) as Record<string, unknown>;
    requests.push({ target: String(request.headers["x-amz-target"]), authorization: String(request.headers.authorization), body });
    if (body.QueueUrl !== queueUrl) {
      response.writeHead(400, {
        "content-type": "application/x-amz-json-1.0",
        "x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender",
      });
      return response.end(
        JSON.stringify({ __type: "com.amazonaws.sqs#QueueDoesNotExist", message: "The specified queue does not exist." }),
      );
    }
    response.writeHead(200, { "content-type": "application/x-amz-json-1.0" });
    response.end(
      JSON.stringify({
        Attributes: { ApproximateNumberOfMessages: String(depth.visible), ApproximateNumberOfMessagesNotVisible: String(depth.inFlight) },
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const client = () =>
  new SQSClient({ endpoint, maxAttempts: 1, region: "eu-west-1", credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" } });

describe("the SQS backlog", () => {
  it("is the applier queue's waiting and in-flight messages, read once per second however many webhooks ask", async () => {
    depth = { visible: 700, inFlight: 50 };
    const backlog = sqsBacklog(queueUrl, { client: client(), bound: 500, cacheMs: 1000 });
    expect(backlog.bound).toBe(500);
    const answers = await Promise.all(Array.from({ length: 20 }, () => backlog.pending()));
    expect(answers).toEqual(Array(20).fill(750));
    expect(requests).toHaveLength(1);
    expect(requests[0]!.target).toBe("AmazonSQS.GetQueueAttributes");
    expect(requests[0]!.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/sqs\/aws4_request/);
    expect(requests[0]!.body).toMatchObject({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    });
    depth = { visible: 0, inFlight: 0 };
    expect(await backlog.pending()).toBe(750);
  });

  it("fails with SQS's error on a queue that does not exist, and asks again next time", { timeout: 30_000 }, async () => {
    requests.length = 0;
    const backlog = sqsBacklog(`${queueUrl}-gone`, { client: client(), cacheMs: 1000 });
    await expect(backlog.pending()).rejects.toMatchObject({ name: "QueueDoesNotExist" });
    await expect(backlog.pending()).rejects.toMatchObject({ name: "QueueDoesNotExist" });
    expect(requests).toHaveLength(2);
  });
});
