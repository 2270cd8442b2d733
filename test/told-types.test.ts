/**
 * What a record tells, one level down (review 98): an admin's rule firing on the redrive of a key's creation recorded
 * `automation.fired` about `bus.dead_letter_redriven`, its subject the key's id, and an operator's subscription to
 * firings was sent it, though an operator reads no `key.*` event.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordDeadLetter, type BusEnvelope } from "@simroot/core";
import { committedEvents } from "./support/audit-events.ts";
import { operatorOf } from "./support/roles.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
let server: Server;
/** What each receiver was sent: a Standard Webhooks payload, the domain event its `data`. */
const received: { path: string; event: { type: string; data: { subject: string; data: Record<string, unknown> } } }[] = [];
let base: string;
beforeAll(async () => {
  runtime = await startTestRuntime({ webhookWorkerMs: 0 });
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ path: request.url ?? "", event: JSON.parse(body) });
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await runtime.stop();
});

describe("records about records", () => {
  it("tell what the event they are about tells: a firing on a key's redriven letter reaches an admin's subscription only", async () => {
    const tenant = await tenantClient(runtime, "told-types");
    const operator = await operatorOf(runtime, tenant);
    const firings = { "detail-type": ["automation.fired"] };
    expect((await operator("POST", "/v1/webhooks", { url: `${base}/operator`, pattern: firings })).status).toBe(201);
    expect((await tenant.call("POST", "/v1/webhooks", { url: `${base}/admin`, pattern: firings })).status).toBe(201);
    const rule = await tenant.call("POST", "/v1/automation/rules", {
      name: "watch redrives",
      pattern: { "detail-type": ["bus.dead_letter_redriven"] },
      actions: [{ type: "open-incident" }],
    });
    expect(rule.status, rule.text).toBe(201);
    expect((await tenant.call("POST", "/v1/keys", { name: "edge", role: "pep" })).status).toBe(201);
    await runtime.settled();
    const created = (await committedEvents(runtime, tenant.tenant.id)).find((event) => event.type === "key.created")!;
    const envelope = { source: "simroot", "detail-type": created.type, detail: created } as unknown as BusEnvelope;
    await recordDeadLetter(runtime.ports, { rule: "automation", reason: "failed", envelope });
    const [letter] = (await tenant.call("GET", "/v1/bus/dead-letters")).json.items as { id: string }[];
    expect((await tenant.call("POST", `/v1/bus/dead-letters/${encodeURIComponent(letter!.id)}/redrive`)).status).toBe(202);
    await runtime.settled();
    await expect.poll(() => received.filter(({ path }) => path === "/admin").length, { timeout: 10_000 }).toBeGreaterThan(0);
    await runtime.settled();
    const [told] = received.filter(({ path }) => path === "/admin");
    expect(received.filter(({ path }) => path === "/operator")).toEqual([]);
    expect(told!.event.data.data.toldTypes).toEqual(["bus.dead_letter_redriven", "key.created"]);
  });
});
