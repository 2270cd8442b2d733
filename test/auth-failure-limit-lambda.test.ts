/**
 * The failed-authentication limit in AWS: each API function counts the 401s it answers per client address, by the
 * address API Gateway saw (`requestContext.http.sourceIp`, not a header the client sets), and shares the count with
 * the function's other instances through the store (review 89's open item: in AWS only the stage-wide throttle
 * bounded a client failing authentication). Two instances of the API function the way AWS builds it, each with ports
 * of its own over the same tables, 4 failures a minute.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { managementRoutes } from "@simroot/api/groups/management";
import { apiFunction } from "../functions/src/lib/api-function.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let first: TestRuntime;
let second: TestRuntime;
beforeAll(async () => {
  const tablePrefix = `afl${randomBytes(4).toString("hex")}-`;
  first = await startTestRuntime({ tablePrefix });
  second = await startTestRuntime({ tablePrefix });
});
afterAll(async () => {
  await second.stop();
  await first.stop();
});

/** An HTTP API (payload 2.0) request from `sourceIp`, as API Gateway hands it to the function. */
const event = (sourceIp: string, token: string): APIGatewayProxyEventV2 =>
  ({
    version: "2.0",
    routeKey: "$default",
    rawPath: "/v1/devices",
    rawQueryString: "",
    headers: { host: "abc.execute-api.eu-west-1.amazonaws.com", authorization: `Bearer ${token}` },
    requestContext: {
      domainName: "abc.execute-api.eu-west-1.amazonaws.com",
      http: { method: "GET", path: "/v1/devices", protocol: "HTTP/1.1", sourceIp, userAgent: "test" },
      requestId: "r",
      routeKey: "$default",
      stage: "$default",
      time: "",
      timeEpoch: 0,
    },
    isBase64Encoded: false,
  }) as unknown as APIGatewayProxyEventV2;

describe("failed authentications in AWS", () => {
  it("are counted per source address across the function's instances, and answered 429 past the limit", async () => {
    // The limit counts in fixed 60 s windows aligned to the clock: failures straddling two of them are counted apart.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await sleep(60_000 - intoMinute + 100);
    process.env.SIMROOT_AUTH_FAILURES_PER_MINUTE = "4";
    const instances = [first, second].map((runtime) => apiFunction(managementRoutes, { ports: () => runtime.ports }).handler);
    delete process.env.SIMROOT_AUTH_FAILURES_PER_MINUTE;
    const [a, b] = instances as [(typeof instances)[0], (typeof instances)[0]];
    const status = async (handler: typeof a, sourceIp: string, token = "sr_key_wrong") =>
      (await handler(event(sourceIp, token))).statusCode;

    expect([await status(a, "203.0.113.9"), await status(a, "203.0.113.9")]).toEqual([401, 401]);
    expect([await status(b, "203.0.113.9"), await status(b, "203.0.113.9")]).toEqual([401, 401]);
    // Four failures at the two instances together: the one that counted last refuses before anything is read.
    const refused = await b(event("203.0.113.9", "sr_key_wrong"));
    expect(refused.statusCode).toBe(429);
    expect(refused.headers?.["content-type"]).toMatch(/^application\/problem\+json/);
    expect(Number(refused.headers?.["retry-after"])).toBeGreaterThan(0);
    expect(JSON.parse(String(refused.body))).toMatchObject({ type: "urn:simroot:problem:auth.too_many_failures", status: 429 });
    // A valid key from that address waits too; another address is not held to its count.
    const tenant = await tenantClient(first, "lambda-limit");
    expect(await status(b, "203.0.113.9", tenant.token)).toBe(429);
    expect(await status(b, "198.51.100.1", tenant.token)).toBe(200);
    // The other instance learns the count when it next counts a failure: one more at most.
    expect([await status(a, "203.0.113.9"), await status(a, "203.0.113.9")][1]).toBe(429);

    // An IPv6 client counts by its /56, what a site is given: by its /64 a /56 held 256 counts (review 91).
    const inOneSite = ["2001:db8:abcd:1201::1", "2001:db8:abcd:1202::1", "2001:db8:abcd:12fe::7", "2001:db8:abcd:1210::1"];
    for (const address of inOneSite) expect(await status(b, address)).toBe(401);
    expect(await status(b, "2001:db8:abcd:12ff::1")).toBe(429);
    expect(await status(b, "2001:db8:abcd:1300::1", tenant.token)).toBe(200);
  });
});
