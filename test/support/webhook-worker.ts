/** What the webhook worker's tests share: a runtime of their own, a subscription, and a backlog of due deliveries. */
import { expect } from "vitest";
import { enqueueDelivery, newId, type Ports } from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./runtime.ts";
import { quarantinedEnvelope } from "./webhooks.ts";

/** A runtime of the test's own (the worker runs over every due delivery of its tables), stopped after `body`. */
export async function withRuntime<T>(options: Parameters<typeof startTestRuntime>[0], body: (runtime: TestRuntime) => Promise<T>) {
  const runtime = await startTestRuntime(options);
  try {
    return await body(runtime);
  } finally {
    await runtime.stop();
  }
}

/** A tenant of its own and its subscription to `device.quarantined` at `url`. */
export async function subscription(runtime: TestRuntime, name: string, url: string) {
  const tenant = await tenantClient(runtime, name);
  const created = await tenant.call("POST", "/v1/webhooks", { url, pattern: { "detail-type": ["device.quarantined"] } });
  expect(created.status, created.text).toBe(201);
  return { tenant, tenantId: tenant.tenant.id, webhookId: created.json.id as string };
}

/** `count` deliveries to the subscription, due since a minute ago; their ids. */
export async function backlog(
  runtime: TestRuntime,
  s: { tenantId: string; webhookId: string },
  count: number,
  ports: Ports = runtime.ports,
) {
  const start = Date.now() - 60_000;
  const ids: string[] = [];
  for (let n = 0; n < count; n++) {
    const id = await enqueueDelivery(ports, s.tenantId, s.webhookId, quarantinedEnvelope(s.tenantId, newId("event", start + n)));
    ids.push(id!);
  }
  return ids;
}
