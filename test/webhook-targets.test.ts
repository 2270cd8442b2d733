/**
 * Outbound webhooks go where a tenant's admin says, from inside the deployment: a URL on a loopback, private or
 * link-local address (the instance metadata service, the control plane's own network) would let a tenant reach what
 * it must not (server-side request forgery; found by review 54's walkthrough: a subscription to http://127.0.0.1 was
 * created and delivered to). As in AWS (`webhookTargets` "public"), such a subscription is refused, and a delivery
 * connects only to a public address its name resolves to, checked on the resolution the connection itself uses.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attemptDelivery, enqueueDelivery, newId, nonPublicAddress, type Ports, type Resolve } from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { quarantinedEnvelope } from "./support/webhooks.ts";

let runtime: TestRuntime;
let receiver: Server;
let port: number;
const received: string[] = [];
beforeAll(async () => {
  runtime = await startTestRuntime({ webhookTargets: "public" });
  receiver = createServer((request, response) => {
    received.push(String(request.headers["webhook-id"]));
    request.resume();
    response.writeHead(204).end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  port = (receiver.address() as { port: number }).port;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
  await runtime.stop();
});

/** Device events only: the subscription's own `webhook.created` is not delivered to it. */
const pattern = { "detail-type": ["device.quarantined"] };
/** A resolver that answers what a hostile DNS zone would: a public-looking name pointing at the loopback. */
const toLoopback: Resolve = async () => [{ address: "127.0.0.1", family: 4 }];

const envelope = quarantinedEnvelope;

describe("webhook targets", () => {
  it("refuses a subscription to a loopback, private or link-local address, or localhost, and creates nothing", async () => {
    const tenant = await tenantClient(runtime, "targets-refused");
    for (const url of [
      `http://127.0.0.1:${port}/hook`,
      "http://localhost/hook",
      "https://api.localhost/hook",
      "http://[::1]/hook",
      "http://[::ffff:127.0.0.1]/hook",
      "http://169.254.169.254/latest/meta-data/",
      "http://10.0.0.5/hook",
      "http://192.168.1.1/hook",
      "http://[fd00:ec2::254]/",
      // Review 56: IPv6 forms that carry an IPv4 address, and a fully qualified localhost.
      "http://[64:ff9b::a00:1]/",
      "http://[2002:7f00:1::]/",
      "http://[::127.0.0.1]/",
      "http://[::ffff:0:a9fe:a9fe]/",
      "http://localhost./hook",
    ]) {
      const answer = await tenant.call("POST", "/v1/webhooks", { url, pattern });
      expect([url, answer.status, answer.headers.get("content-type"), answer.json.type]).toEqual([
        url,
        400,
        "application/problem+json",
        "urn:simroot:problem:webhook.url_not_public",
      ]);
    }
    expect((await tenant.call("GET", "/v1/webhooks")).json.items).toEqual([]);
    // A public address is taken; changing it to a private one is refused like creating it.
    const created = await tenant.call("POST", "/v1/webhooks", { url: "https://hooks.example.com/simroot", pattern });
    expect(created.status).toBe(201);
    const moved = await tenant.call(
      "PATCH",
      `/v1/webhooks/${created.json.id}`,
      { url: "http://127.0.0.1/hook" },
      { "if-match": created.headers.get("etag")! },
    );
    expect([moved.status, moved.json.type]).toEqual([400, "urn:simroot:problem:webhook.url_not_public"]);
  });

  it("refuses a URL carrying credentials, which every viewer and the audit trail would read (review 69)", async () => {
    // A receiver's password in the URL was stored and shown in plaintext (where the signing secret is sealed): a
    // viewer key read it at GET /v1/webhooks/{id}, and `webhook.created` carried it into the audit trail, the SIEM
    // export and every subscription to `webhook.*`. It also let a delivery pass a Basic-authenticated ingestion source.
    const tenant = await tenantClient(runtime, "targets-credentials");
    for (const url of ["https://user:s3cret@hooks.example.com/simroot", "https://token@hooks.example.com/simroot"]) {
      const answer = await tenant.call("POST", "/v1/webhooks", { url, pattern });
      expect([url, answer.status, answer.json.type, answer.json.errors?.[0]?.pointer ?? answer.json.errors?.[0]?.path]).toEqual([
        url,
        400,
        "urn:simroot:problem:webhook.url_credentials",
        expect.stringMatching(/url/),
      ]);
    }
    expect((await tenant.call("GET", "/v1/webhooks")).json.items).toEqual([]);
    const created = await tenant.call("POST", "/v1/webhooks", { url: "https://hooks.example.com/simroot", pattern });
    const moved = await tenant.call(
      "PATCH",
      `/v1/webhooks/${created.json.id}`,
      { url: "https://user:s3cret@hooks.example.com/simroot" },
      { "if-match": created.headers.get("etag")! },
    );
    expect([moved.status, moved.json.type]).toEqual([400, "urn:simroot:problem:webhook.url_credentials"]);
    expect((await tenant.call("GET", `/v1/webhooks/${created.json.id}`)).json.url).toBe("https://hooks.example.com/simroot");
  });

  it("takes public addresses, IPv4 and IPv6", () => {
    for (const address of ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4007:80e::200e", "::ffff:8.8.8.8"]) {
      expect([address, nonPublicAddress(address)]).toEqual([address, undefined]);
    }
  });

  it("delivers nothing to a name that resolves to the loopback, and says why in the delivery log", async () => {
    const tenant = await tenantClient(runtime, "targets-rebound");
    const created = await tenant.call("POST", "/v1/webhooks", { url: `http://receiver.example.com:${port}/hook`, pattern });
    expect(created.status).toBe(201);
    const id = (await enqueueDelivery(runtime.ports, tenant.tenant.id, created.json.id, envelope(tenant.tenant.id, "e-rebound")))!;
    await attemptDelivery(runtime.ports, tenant.tenant.id, created.json.id, id, { resolve: toLoopback });
    expect(received).not.toContain(id);
    const log = (await tenant.call("GET", `/v1/webhooks/${created.json.id}/deliveries`)).json.items;
    expect(log[0].attempts[0].error).toMatch(/receiver\.example\.com resolves to an address that is not public \(127\.0\.0\.1/);
    expect(log[0].attempts[0].status).toBeUndefined();
  });

  it("lists a subscription's deliveries newest event first, page after page (review 55: they came in hash order)", async () => {
    const tenant = await tenantClient(runtime, "deliveries-order");
    const created = await tenant.call("POST", "/v1/webhooks", { url: "https://hooks.example.com/order", pattern });
    const start = Date.parse("2026-12-05T08:00:00Z");
    const ids: string[] = [];
    for (let n = 0; n < 7; n++) {
      const eventId = newId("event", start + n * 60_000);
      ids.push((await enqueueDelivery(runtime.ports, tenant.tenant.id, created.json.id, envelope(tenant.tenant.id, eventId)))!);
    }
    const listed: string[] = [];
    let cursor: string | undefined;
    do {
      const page = (await tenant.call("GET", `/v1/webhooks/${created.json.id}/deliveries?limit=3${cursor ? `&cursor=${cursor}` : ""}`))
        .json;
      listed.push(...page.items.map((item: { id: string }) => item.id));
      cursor = page.next;
    } while (cursor);
    expect(listed).toEqual([...ids].reverse());
  });

  it("delivers to any address where the deployment allows it (the local control plane's default), through the same resolution", async () => {
    const tenant = await tenantClient(runtime, "targets-any");
    const created = await tenant.call("POST", "/v1/webhooks", { url: `http://receiver.example.com:${port}/hook`, pattern });
    const id = (await enqueueDelivery(runtime.ports, tenant.tenant.id, created.json.id, envelope(tenant.tenant.id, "e-any")))!;
    const anywhere: Ports = { ...runtime.ports, webhookTargets: "any" };
    expect(await attemptDelivery(anywhere, tenant.tenant.id, created.json.id, id, { resolve: toLoopback })).toBe("delivered");
    expect(received).toContain(id);
  });
});
