/**
 * A subscription URL carrying credentials is refused since 197595e (test/webhook-targets.test.ts); one stored before
 * keeps them in the store, but they are neither shown (a viewer key read the password) nor sent (every delivery sent
 * them as Basic authorization, which passed a Basic-authenticated ingestion source): review 74.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postWebhook } from "@simroot/core";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

describe("a subscription stored with credentials before they were refused (review 74)", () => {
  it("is neither shown nor delivered with them", async () => {
    const tenant = await tenantClient(runtime, "legacy-webhook");
    const created = await tenant.call("POST", "/v1/webhooks", { url: "https://hooks.example.com/in", pattern: { source: ["simroot"] } });
    expect(created.status).toBe(201);
    // As stored by the release before 197595e, which took the URL as given.
    const legacyUrl = "https://ingest-user:s3cret-password@hooks.example.com/in";
    await runtime.ports.db.send(
      new UpdateCommand({
        TableName: runtime.ports.tables.automation,
        Key: { pk: `T#${tenant.tenant.id}#webhook`, sk: created.json.id },
        UpdateExpression: "SET #url = :url",
        ExpressionAttributeNames: { "#url": "url" },
        ExpressionAttributeValues: { ":url": legacyUrl },
      }),
    );
    const viewer = await tenant.call("POST", "/v1/keys", { name: "dashboard", role: "viewer" });
    expect(viewer.status).toBe(201);
    const shown = await call(runtime, viewer.json.token, "GET", `/v1/webhooks/${created.json.id}`);
    expect(shown.status).toBe(200);
    // A viewer key read the receiver's password.
    expect(shown.json.url).not.toContain("s3cret-password");
  });

  it("is delivered without them: no Basic authorization from a stored URL's credentials", async () => {
    let authorization: string | undefined;
    const server = createServer((request, response) => {
      authorization = request.headers.authorization;
      request.resume();
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      await postWebhook(`http://ingest-user:s3cret-password@127.0.0.1:${port}/in`, { headers: {}, body: "{}", timeoutMs: 2_000 }, "any");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(authorization).toBeUndefined();
  });
});
