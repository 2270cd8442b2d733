/**
 * A subscription receives only the events its role may read through the API (review 87). An operator key may create
 * subscriptions but may not list keys or sources: a subscription it made to `{ "source": ["simroot"] }` received every
 * `key.created` (the key's name, role and selector), key rotation and revocation and `source.*` event of its tenant.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deliverDue, recordDeadLetter, type BusEnvelope } from "@simroot/core";
import { committedEvents } from "./support/audit-events.ts";
import { forgetRole, operatorOf as operatorsOf } from "./support/roles.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
let server: Server;
/** Every event each receiver path got (`/fail` answers 500). */
const received = new Map<string, { type: string; data: { data: Record<string, unknown> } }[]>();
const typesAt = (path: string) => (received.get(path) ?? []).map((event) => event.type);
let base: string;
beforeAll(async () => {
  runtime = await startTestRuntime({ webhookWorkerMs: 0 });
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.set(request.url!, [...(received.get(request.url!) ?? []), JSON.parse(body)]);
      response.writeHead(request.url === "/fail" ? 500 : 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await runtime.stop();
});

const everything = { source: ["simroot"] };
type Tenant = Awaited<ReturnType<typeof tenantClient>>;

const operatorOf = (tenant: Tenant) => operatorsOf(runtime, tenant);

/** The event types a subscription was sent, by its delivery log (whatever their status). */
async function loggedTypes(tenant: Tenant, webhookId: string) {
  const log = await tenant.call("GET", `/v1/webhooks/${webhookId}/deliveries?limit=100`);
  expect(log.status, log.text).toBe(200);
  return (log.json.items as { eventType: string }[]).map((delivery) => delivery.eventType);
}

describe("a subscription receives what its role reads (review 87)", { timeout: 60_000 }, () => {
  it("an operator's subscription to everything is not sent key.created; an admin's is", async () => {
    const tenant = await tenantClient(runtime, "roles-keys");
    const operator = await operatorOf(tenant);
    const mine = await operator("POST", "/v1/webhooks", { url: `${base}/operator`, pattern: everything });
    expect(mine.status, mine.text).toBe(201);
    const admins = await tenant.call("POST", "/v1/webhooks", { url: `${base}/admin`, pattern: everything });
    expect(admins.status, admins.text).toBe(201);

    const key = await tenant.call("POST", "/v1/keys", { name: "site lyon pep", role: "pep", selector: "site=lyon" });
    expect(key.status, key.text).toBe(201);
    const device = await tenant.call("POST", "/v1/devices", { imsi: "208018700000001" });
    expect(device.status, device.text).toBe(201);
    await runtime.settled();

    expect(typesAt("/admin")).toEqual(expect.arrayContaining(["key.created", "device.registered"]));
    expect(typesAt("/operator")).toContain("device.registered");
    expect(typesAt("/operator")).not.toContain("key.created");
    expect(await loggedTypes(tenant, mine.json.id)).not.toContain("key.created");
    expect(mine.json.role).toBe("operator");
    // The admin's subscription's log names its key.created delivery to admins only.
    expect(await loggedTypes(tenant, admins.json.id)).toContain("key.created");
    const asOperator = await operator("GET", `/v1/webhooks/${admins.json.id}/deliveries?limit=100`);
    expect(asOperator.status, asOperator.text).toBe(200);
    const operatorSees = (asOperator.json.items as { eventType: string }[]).map((delivery) => delivery.eventType);
    expect(operatorSees).toContain("device.registered");
    expect(operatorSees).not.toContain("key.created");
  });

  it("an operator paging an admin's subscription's log is never handed a hidden delivery's id, nor may replay one (review 92)", async () => {
    const tenant = await tenantClient(runtime, "roles-pages");
    const operator = await operatorOf(tenant);
    const admins = await tenant.call("POST", "/v1/webhooks", { url: `${base}/admin-pages`, pattern: everything });
    expect(admins.status, admins.text).toBe(201);
    expect((await tenant.call("POST", "/v1/devices", { imsi: "208018700000002" })).status).toBe(201);
    expect((await tenant.call("POST", "/v1/keys", { name: "hidden", role: "viewer" })).status).toBe(201);
    expect((await tenant.call("POST", "/v1/devices", { imsi: "208018700000003" })).status).toBe(201);
    await runtime.settled();
    const all = (await tenant.call("GET", `/v1/webhooks/${admins.json.id}/deliveries?limit=100`)).json.items as {
      id: string;
      eventType: string;
    }[];
    const hidden = all.filter((delivery) => delivery.eventType === "key.created");
    expect(hidden.length).toBeGreaterThan(0);
    // Page by page, as the operator: a page's cursor was the store's last key read, a hidden delivery's when the page
    // ended on one (its id names the event: `msg_<event id>`).
    const shown: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const page = await operator("GET", `/v1/webhooks/${admins.json.id}/deliveries?limit=1${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status, page.text).toBe(200);
      shown.push(...(page.json.items as { id: string }[]).map((delivery) => delivery.id));
      cursor = page.json.next;
      if (!cursor) break;
      const named = Buffer.from(cursor, "base64url").toString("utf8");
      for (const delivery of hidden) expect(named).not.toContain(delivery.id.slice(4, 30));
    }
    expect(cursor).toBeUndefined();
    expect(shown.sort()).toEqual(
      all
        .filter((delivery) => delivery.eventType !== "key.created")
        .map((delivery) => delivery.id)
        .sort(),
    );
    // Nor may the operator send it again (it was 202, and named the event's type and id).
    const replay = await operator("POST", `/v1/webhooks/${admins.json.id}/deliveries/${hidden[0]!.id}/replay`);
    expect([replay.status, replay.json.code ?? replay.json.type]).toEqual([404, "urn:simroot:problem:delivery.not_found"]);
  });

  it("an admin's subscription is still sent what only admins read: keys created, rotated, revoked; sources", async () => {
    const tenant = await tenantClient(runtime, "roles-admin");
    const admins = await tenant.call("POST", "/v1/webhooks", { url: `${base}/admin-all`, pattern: everything });
    expect(admins.status, admins.text).toBe(201);
    const key = await tenant.call("POST", "/v1/keys", { name: "ops", role: "operator" });
    expect((await tenant.call("POST", `/v1/keys/${key.json.key.keyId}/rotate`)).status).toBe(200);
    expect((await tenant.call("DELETE", `/v1/keys/${key.json.key.keyId}`)).status).toBe(200);
    expect((await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).status).toBe(201);
    await runtime.settled();
    expect(typesAt("/admin-all")).toEqual(expect.arrayContaining(["key.created", "key.rotated", "key.revoked", "source.created"]));
    const created = received.get("/admin-all")!.find((event) => event.type === "key.created")!;
    expect(created.data.data).toMatchObject({ name: "ops", role: "operator" });
    expect(admins.json.role).toBe("admin");
  });

  it("an operator's change to an admin's subscription makes it an operator's: a key event queued before is not sent", async () => {
    const tenant = await tenantClient(runtime, "roles-changed");
    const operator = await operatorOf(tenant);
    const admins = await tenant.call("POST", "/v1/webhooks", { url: `${base}/fail`, pattern: everything });
    expect(admins.status, admins.text).toBe(201);
    expect((await tenant.call("POST", "/v1/keys", { name: "auditor", role: "viewer" })).status).toBe(201);
    await runtime.settled();
    expect(typesAt("/fail")).toContain("key.created"); // tried once, answered 500: due again in 5 s

    const changed = await operator("PATCH", `/v1/webhooks/${admins.json.id}`, { url: `${base}/elsewhere` }, { "if-match": '"1"' });
    expect(changed.status, changed.text).toBe(200);
    expect(await deliverDue({ ...runtime.ports, now: () => new Date(Date.now() + 60_000) })).toBeGreaterThan(0);
    expect(typesAt("/elsewhere")).not.toContain("key.created");
    const log = (await tenant.call("GET", `/v1/webhooks/${admins.json.id}/deliveries`)).json.items as {
      eventType: string;
      status: string;
      reason?: string;
    }[];
    expect(log.find((delivery) => delivery.eventType === "key.created")).toMatchObject({
      status: "failed",
      reason: "the subscription's role (operator) may not read this event",
    });
    expect(changed.json.role).toBe("operator");

    // An admin's change makes it an admin's again.
    const back = await tenant.call("PATCH", `/v1/webhooks/${admins.json.id}`, { description: "admins" }, { "if-match": '"2"' });
    expect(back.json.role).toBe("admin");
  });

  it("a subscription stored before roles were recorded is an operator's", async () => {
    const tenant = await tenantClient(runtime, "roles-legacy");
    const admins = await tenant.call("POST", "/v1/webhooks", { url: `${base}/legacy`, pattern: everything });
    expect(admins.status, admins.text).toBe(201);
    // As stored before review 87: no role.
    await forgetRole(runtime, tenant.tenant.id, "webhook", admins.json.id);
    expect((await tenant.call("POST", "/v1/keys", { name: "ops", role: "operator" })).status).toBe(201);
    expect((await tenant.call("POST", "/v1/devices", { imsi: "208018700000002" })).status).toBe(201);
    await runtime.settled();
    expect(typesAt("/legacy")).toContain("device.registered");
    expect(typesAt("/legacy")).not.toContain("key.created");
    expect((await tenant.call("GET", `/v1/webhooks/${admins.json.id}`)).json.role).toBe("operator");
  });

  it("a rule's notify sends an operator's subscription nothing it may not read, nor does a firing's record name it", async () => {
    const tenant = await tenantClient(runtime, "roles-notify");
    const operator = await operatorOf(tenant);
    const narrow = await operator("POST", "/v1/webhooks", {
      url: `${base}/notified`,
      pattern: { source: ["simroot"], "detail-type": ["none.ever"] },
    });
    expect(narrow.status, narrow.text).toBe(201);
    const firings = await operator("POST", "/v1/webhooks", { url: `${base}/firings`, pattern: everything });
    expect(firings.status, firings.text).toBe(201);
    const admins = await tenant.call("POST", "/v1/webhooks", { url: `${base}/admin-firings`, pattern: everything });
    expect(admins.status, admins.text).toBe(201);
    // An admin's rule on key events (an operator's may not match them: automation-roles.test.ts), notifying an operator's
    // subscription: what it is sent is its own role's.
    const rule = await tenant.call("POST", "/v1/automation/rules", {
      name: "tell me of keys",
      pattern: { source: ["simroot"], "detail-type": ["key.created"] },
      actions: [{ type: "notify", webhookId: narrow.json.id }],
    });
    expect(rule.status, rule.text).toBe(201);
    expect((await tenant.call("POST", "/v1/keys", { name: "secret project", role: "viewer" })).status).toBe(201);
    await runtime.settled();

    expect(typesAt("/notified")).not.toContain("key.created");
    expect(await loggedTypes(tenant, narrow.json.id)).not.toContain("key.created");
    const fired = received.get("/admin-firings")!.find((event) => event.type === "automation.fired");
    expect(fired?.data.data).toMatchObject({ eventType: "key.created", actions: [{ type: "notify", outcome: "skipped" }] });
    expect(typesAt("/firings")).not.toContain("automation.fired");
    expect(typesAt("/firings")).not.toContain("key.created");
  });
});

describe("records about records (review 98)", () => {
  it("tell what the event they are about tells: a firing on a key's redriven letter reaches an admin's subscription only", async () => {
    // An admin's rule firing on the redrive of a key's creation recorded `automation.fired` about
    // `bus.dead_letter_redriven`, its subject the key's id, and an operator's subscription to firings was sent it.
    const tenant = await tenantClient(runtime, "told-types");
    const operator = await operatorsOf(runtime, tenant);
    const firings = { "detail-type": ["automation.fired"] };
    expect((await operator("POST", "/v1/webhooks", { url: `${base}/told-operator`, pattern: firings })).status).toBe(201);
    expect((await tenant.call("POST", "/v1/webhooks", { url: `${base}/told-admin`, pattern: firings })).status).toBe(201);
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
    await expect.poll(() => typesAt("/told-admin"), { timeout: 10_000 }).toContain("automation.fired");
    await runtime.settled();
    expect(typesAt("/told-operator")).toEqual([]);
    expect(received.get("/told-admin")![0]!.data.data.toldTypes).toEqual(["bus.dead_letter_redriven", "key.created"]);
  });
});
