import { Hono } from "hono";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { expect, it } from "vitest";
import { lambdaHandler } from "./lambda-http.ts";

/** An HTTP API (payload 2.0) event, as API Gateway sends it. */
const event = (over: Partial<APIGatewayProxyEventV2> & { method?: string }): APIGatewayProxyEventV2 => ({
  version: "2.0",
  routeKey: "$default",
  rawPath: "/v1/things",
  rawQueryString: "limit=2&tag=a%20b",
  headers: { "content-type": "application/json", authorization: "Bearer t", host: "abc.execute-api.us-east-1.amazonaws.com" },
  requestContext: {
    accountId: "111122223333",
    apiId: "abc",
    domainName: "abc.execute-api.us-east-1.amazonaws.com",
    domainPrefix: "abc",
    http: { method: over.method ?? "GET", path: "/v1/things", protocol: "HTTP/1.1", sourceIp: "198.51.100.7", userAgent: "curl" },
    requestId: "r1",
    routeKey: "$default",
    stage: "$default",
    time: "02/Dec/2026:05:00:00 +0000",
    timeEpoch: 0,
  },
  isBase64Encoded: false,
  ...over,
});

const app = new Hono()
  .get("/v1/things", (c) => c.json({ limit: c.req.query("limit"), tag: c.req.query("tag"), auth: c.req.header("authorization") }))
  .post("/v1/things", async (c) => {
    c.header("set-cookie", "a=1");
    c.header("retry-after", "2");
    return c.json({ got: await c.req.json() }, 503);
  })
  .get("/v1/blob", () => new Response(new Uint8Array([0, 1, 255]), { headers: { "content-type": "application/octet-stream" } }));

const handler = lambdaHandler(app.fetch);

it("passes path, query and headers of an HTTP API event to the app", async () => {
  const result = await handler(event({}));
  expect(result.statusCode).toBe(200);
  expect(JSON.parse(result.body!)).toEqual({ limit: "2", tag: "a b", auth: "Bearer t" });
  expect(result.isBase64Encoded).toBe(false);
});

it("decodes a base64 body and returns status, headers and cookies", async () => {
  const body = Buffer.from(JSON.stringify({ x: 1 })).toString("base64");
  const result = await handler(event({ method: "POST", body, isBase64Encoded: true }));
  expect(result.statusCode).toBe(503);
  expect(result.headers?.["retry-after"]).toBe("2");
  expect(result.cookies).toEqual(["a=1"]);
  expect(JSON.parse(result.body!)).toEqual({ got: { x: 1 } });
});

it("returns binary bodies base64-encoded", async () => {
  const result = await handler(event({ rawPath: "/v1/blob", rawQueryString: "" }));
  expect(result.isBase64Encoded).toBe(true);
  expect(Buffer.from(result.body!, "base64")).toEqual(Buffer.from([0, 1, 255]));
});
