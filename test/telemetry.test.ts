/**
 * What operators read in AWS: the functions' Powertools log lines carry the invocation's request
 * id, and their EMF documents carry the figures of core's `platform/metrics.ts`, the only names
 * `infra/ops.ts` charts and alarms on. The API runs behind the Lambda HTTP adapter
 * (functions/src/lib/lambda-http.ts) and the applier as the operator-events consumer, both with the
 * sink and logger the Lambda entry points use, over DynamoDB Local. Output is read from stdout and
 * stderr, which Lambda hands to CloudWatch Logs.
 */
import { createServer } from "node:http";
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { metricDefinitions, metricNamespace, type MetricName } from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

process.env.POWERTOOLS_SERVICE_NAME = "simroot-api";
const { logger, metricsSink } = await import("../functions/src/lib/telemetry.ts");
const { lambdaHandler } = await import("../functions/src/lib/lambda-http.ts");

let runtime: TestRuntime;
const lines: string[] = [];
let handler: ReturnType<typeof lambdaHandler>;

beforeAll(async () => {
  // No webhook worker of its own: the one under test is the Lambda entry point's.
  runtime = await startTestRuntime({ metrics: metricsSink, log: logger, logRequests: true, webhookWorkerMs: 0 });
  handler = lambdaHandler(runtime.app.fetch);
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    vi.spyOn(stream, "write").mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      return write(chunk, ...(rest as []));
    });
  }
});
afterAll(async () => {
  vi.restoreAllMocks();
  await runtime.stop();
});

const context = (awsRequestId: string) =>
  ({
    awsRequestId,
    functionName: "simroot-prod-Api",
    functionVersion: "$LATEST",
    memoryLimitInMB: "1024",
    invokedFunctionArn: "arn:aws:lambda:eu-west-1:111122223333:function:simroot-prod-Api",
    logGroupName: "/aws/lambda/simroot-prod-Api",
    logStreamName: "2026/12/02/[$LATEST]abc",
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => 29_000,
  }) as unknown as Context;

/** An HTTP API (payload 2.0) event, as API Gateway sends it. */
function event(method: string, path: string, headers: Record<string, string>, body?: string): APIGatewayProxyEventV2 {
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers: { host: "abc.execute-api.eu-west-1.amazonaws.com", ...headers },
    requestContext: {
      accountId: "111122223333",
      apiId: "abc",
      domainName: "abc.execute-api.eu-west-1.amazonaws.com",
      domainPrefix: "abc",
      http: { method, path, protocol: "HTTP/1.1", sourceIp: "198.51.100.7", userAgent: "test" },
      requestId: "gw-1",
      routeKey: "$default",
      stage: "$default",
      time: "02/Dec/2026:05:00:00 +0000",
      timeEpoch: 0,
    },
    isBase64Encoded: false,
    ...(body === undefined ? {} : { body }),
  };
}

/** A printed line: a Powertools log entry, or an EMF document (`_aws`) with each metric's value under its name. */
interface LogLine {
  readonly _aws?: {
    readonly Timestamp: unknown;
    readonly CloudWatchMetrics: readonly { readonly Namespace: string; readonly Dimensions: unknown; readonly Metrics: unknown }[];
  };
  readonly [field: string]: unknown;
}

const json = (line: string) => {
  try {
    return JSON.parse(line) as LogLine;
  } catch {
    return undefined;
  }
};

/** Every EMF document printed since `from`, checked against the format, and the values of each metric in them. */
function metricsSince(from: number) {
  const values = new Map<string, number[]>();
  for (const doc of lines.slice(from).map(json)) {
    if (!doc?._aws) continue;
    expect(typeof doc._aws.Timestamp).toBe("number");
    const [directive, ...more] = doc._aws.CloudWatchMetrics;
    expect(more).toEqual([]);
    expect(directive!.Namespace).toBe(metricNamespace);
    expect(directive!.Dimensions).toEqual([["service"]]);
    expect(doc.service).toBe("simroot-api");
    for (const { Name, Unit } of directive!.Metrics as { Name: MetricName; Unit: string }[]) {
      expect(Unit).toBe(metricDefinitions[Name].unit);
      values.set(Name, [...(values.get(Name) ?? []), ...[doc[Name] as number | number[]].flat()]);
    }
  }
  return values;
}

const sum = (values: number[] | undefined) => (values ?? []).reduce((a, b) => a + b, 0);
const imsi = "208011234567801";

describe("Powertools logs and metrics", () => {
  it("logs each request with the Lambda request id beside simroot's own", async () => {
    const { token } = await tenantClient(runtime);
    await runtime.settled();
    const from = lines.length;
    const answer = await handler(
      event("GET", "/v1/devices", { authorization: `Bearer ${token}`, "x-request-id": "req-telemetry-1" }),
      context("aws-req-1"),
    );
    expect(answer.statusCode).toBe(200);
    const logged = lines
      .slice(from)
      .map(json)
      .find((line) => line?.message === "request");
    expect(logged).toMatchObject({
      level: "INFO",
      service: "simroot-api",
      function_request_id: "aws-req-1",
      function_name: "simroot-prod-Api",
      requestId: "req-telemetry-1",
      method: "GET",
      path: "/v1/devices",
      status: 200,
    });
  });

  it("logs a consumer's failure with the invocation's request id and the event, and rethrows it", async () => {
    const { handlerFor } = await import("../functions/src/consumers/operator-events.ts");
    const consume = handlerFor(() => runtime.ports);
    const from = lines.length;
    const envelope = { "detail-type": "sim.attached", detail: { id: "evt_telemetry", tenantId: "ten_telemetry", data: {} } };
    await expect(consume(envelope as never, context("aws-req-4"))).rejects.toThrow(/not a normalized fact/);
    const logged = lines
      .slice(from)
      .map(json)
      .find((line) => line?.message === "consumer failed");
    expect(logged).toMatchObject({
      level: "ERROR",
      function_request_id: "aws-req-4",
      consumer: "operator-events",
      eventId: "evt_telemetry",
      tenantId: "ten_telemetry",
      code: "ingest.malformed_fact",
    });
  });

  it("counts accepted events at ingest and settled and applied facts at the applier", async () => {
    const tenant = await tenantClient(runtime);
    await tenant.call("POST", "/v1/devices", { imsi });
    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    const facts = [1, 2, 3].map((minute) => ({
      type: "sim.attached",
      dedupeKey: `telemetry-${minute}`,
      occurredAt: new Date(Date.UTC(2026, 10, 22, 6, minute)).toISOString(),
      device: { imsi },
      sourceType: "sim.attached",
      data: { bearer: "cellular", rat: "NR", plmn: { mcc: "208", mnc: "01" }, apn: "iot.acme", ipv4: `10.20.0.${minute}` },
    }));
    // The third fact again: accepted at ingest, then settled as a duplicate, not applied.
    const body = JSON.stringify([...facts, facts[2]]);
    const from = lines.length;
    const answer = await handler(
      event("POST", source.ingestPath, standardWebhookHeaders(credentials.webhookSecret, body), body),
      context("aws-req-2"),
    );
    expect(answer.statusCode).toBe(202);
    await runtime.settled();
    const recorded = metricsSince(from);
    expect(sum(recorded.get("IngestAccepted"))).toBe(4);
    expect(sum(recorded.get("FactsSettled"))).toBe(4);
    expect(sum(recorded.get("FactsApplied"))).toBe(3);
  });

  it("records how long a revocation took to reach the signed feed", async () => {
    const tenant = await tenantClient(runtime);
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011234567802" })).json;
    const from = lines.length;
    const body = JSON.stringify({ reason: "stolen" });
    const answer = await handler(
      event(
        "POST",
        `/v1/devices/${device.id}/revoke`,
        { authorization: `Bearer ${tenant.token}`, "content-type": "application/json" },
        body,
      ),
      context("aws-req-3"),
    );
    expect(answer.statusCode).toBe(200);
    const recorded = metricsSince(from);
    const [revocation] = recorded.get("RevocationLatencyMs") ?? [];
    expect(revocation).toBeGreaterThan(0);
    expect(revocation).toBeLessThan(5_000);
    expect(recorded.get("FeedLatencyMs")).toContain(revocation);
  });

  it("prints the feed latency of what the webhook worker commits (webhookWorkerFeedLatency alarms on it: review 101)", async () => {
    const { handlerFor } = await import("../functions/src/webhook-worker.ts");
    // The receiver fails the first attempt (the consumer's), then answers 410 Gone to the worker's retry.
    const answers = [500, 410];
    let received = 0;
    const server = createServer((request, response) => {
      request.resume();
      received++;
      response.writeHead(answers.shift() ?? 200).end();
    });
    const url = await new Promise<string>((resolve) =>
      server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}/hook`)),
    );
    try {
      const tenant = await tenantClient(runtime);
      const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011234567803" })).json;
      const webhook = await tenant.call("POST", "/v1/webhooks", {
        url,
        pattern: { source: ["simroot"], "detail-type": ["device.quarantined"] },
      });
      expect(webhook.status, webhook.text).toBe(201);
      expect((await tenant.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "telemetry" })).status).toBe(200);
      await runtime.settled();
      await expect.poll(() => received, { timeout: 10_000 }).toBe(1);
      const from = lines.length;
      // The retry is due in 5 s: the worker's run an hour later attempts it. Its feed notices take 300 ms to send
      // (review 104): the run returns only once they are sent, or Lambda would freeze them until its next invocation.
      const sending = new Set<Promise<void>>();
      let sent = 0;
      const notifier = runtime.ports.feedNotifier!;
      const { publish, settled } = notifier;
      const slow = vi.spyOn(notifier, "publish").mockImplementation((...args) => {
        const send = new Promise<void>((resolve) => setTimeout(resolve, 300))
          .then(() => publish.apply(notifier, args))
          .finally(() => {
            sent++;
            sending.delete(send);
          });
        sending.add(send);
        return send;
      });
      const waits = vi.spyOn(notifier, "settled").mockImplementation(async (timeoutMs: number) => {
        await Promise.race([Promise.allSettled([...sending]), new Promise((resolve) => setTimeout(resolve, timeoutMs))]);
        await settled?.call(notifier, timeoutMs);
      });
      const later = { ...runtime.ports, now: () => new Date(Date.now() + 3_600_000) };
      // Past the notice interval since the quarantine's notice: the worker's change is announced, not left to the next.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      expect(await handlerFor(() => later)(undefined, context("aws-req-5"))).toEqual({ attempted: 1 });
      slow.mockRestore();
      waits.mockRestore();
      // Nothing still being sent when the run returned, and at least the worker's own notice sent (a backstop's trailing
      // notice may be another).
      expect(sending.size).toBe(0);
      expect(sent).toBeGreaterThan(0);
      expect((await tenant.call("GET", `/v1/webhooks/${webhook.json.id}`)).json).toMatchObject({ enabled: false });
      expect(metricsSince(from).get("FeedLatencyMs")?.length).toBeGreaterThan(0);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
