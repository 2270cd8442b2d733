/**
 * Outbound webhooks: Standard Webhooks signatures checked by the `standardwebhooks` library
 * (v1) and by simroot's own Standard Webhooks intake (v1a, which the JS library does not
 * implement); retries, 410, the delivery log and replay; and a worker killed with SIGKILL in
 * the middle of a delivery loses nothing.
 */
import { fork } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DeleteCommand, GetCommand } from "@aws-sdk/lib-dynamodb";
import { deliverDue, enqueueDelivery, maxWebhooksPerTenant, retryDelaysSeconds, type BusEnvelope } from "@simroot/core";
import { recordKey } from "@simroot/core/automation/records";
import { simrootAdapter as simrootAdapterForTests } from "@simroot/core/ingest/adapters/simroot";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

interface Received {
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** A receiver whose answers the test scripts: each request gets the next status (200 once the script runs out). */
function receiver() {
  const received: Received[] = [];
  const script: (number | "hang")[] = [];
  const waiters: (() => void)[] = [];
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      received.push({ headers: request.headers as Record<string, string>, body });
      for (const wake of waiters.splice(0)) wake();
      const next = script.shift() ?? 200;
      if (next === "hang") return;
      response.writeHead(next).end();
    });
  });
  const listening = new Promise<string>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}/hook`)),
  );
  const next = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${received.length} deliveries arrived`)), 90_000);
      const check = () => {
        if (received.length >= count) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return {
    received,
    script,
    listening,
    next,
    close: () => new Promise((resolve) => server.closeAllConnections() ?? server.close(resolve)),
  };
}

let runtime: TestRuntime;
let secretsKeyPath: string;
beforeAll(async () => {
  // A key file, not memory: the worker killed with SIGKILL runs in a process of its own and must open the same secrets.
  secretsKeyPath = join(await mkdtemp(join(tmpdir(), "simroot-webhooks-")), "secrets-key");
  runtime = await startTestRuntime({ webhookWorkerMs: 0, secretsKeyPath });
});
afterAll(() => runtime.stop());

const onQuarantine = { source: ["simroot"], "detail-type": ["device.quarantined"] };
let devices = 0;

async function subscribed(signing: "v1" | "v1a", url: string) {
  const tenant = await tenantClient(runtime, `hooks-${devices}`);
  const device = (await tenant.call("POST", "/v1/devices", { imsi: `23420000000${String(++devices).padStart(4, "0")}` })).json;
  const webhook = await tenant.call("POST", "/v1/webhooks", { url, pattern: onQuarantine, signing });
  expect(webhook.status, webhook.text).toBe(201);
  const quarantine = () => tenant.call("POST", `/v1/devices/${device.id}/quarantine`, { reason: "test" });
  return { tenant, device, webhook: webhook.json, quarantine };
}

const later = (ms: number) => ({ ...runtime.ports, now: () => new Date(Date.now() + ms) });

describe("outbound webhooks", { timeout: 180_000 }, () => {
  it("signs v1 so that the standardwebhooks library verifies it, and sends the event", async () => {
    const hook = receiver();
    const { webhook, device, quarantine } = await subscribed("v1", await hook.listening);
    expect(webhook.secret).toMatch(/^whsec_/);
    await quarantine();
    await hook.next(1);
    const [delivery] = hook.received;
    const payload = new Webhook(webhook.secret).verify(delivery!.body, delivery!.headers) as { type: string; data: { subject: string } };
    expect(payload).toMatchObject({ type: "device.quarantined", data: { subject: device.id } });
    expect(() => new Webhook(webhook.secret).verify(delivery!.body.replace("quarantined", "reinstated"), delivery!.headers)).toThrow();
    await hook.close();
  });

  it("rotates a v1 secret: for a day both secrets verify each delivery with the standardwebhooks library, then only the new (review 109)", async () => {
    const hook = receiver();
    const { tenant, webhook, quarantine } = await subscribed("v1", await hook.listening);
    const rotated = await tenant.call("POST", `/v1/webhooks/${webhook.id}/rotate-secret`);
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.json.secret).toMatch(/^whsec_/);
    expect(rotated.json.secret).not.toBe(webhook.secret);
    expect(Date.parse(rotated.json.previousSecretUntil) - Date.now()).toBeGreaterThan(23 * 3_600_000);
    // Shown once: a read of the subscription carries neither secret.
    expect(JSON.stringify((await tenant.call("GET", `/v1/webhooks/${webhook.id}`)).json)).not.toMatch(/whsec_/);
    await quarantine();
    await hook.next(1);
    const [during] = hook.received;
    for (const secret of [webhook.secret, rotated.json.secret])
      expect(() => new Webhook(secret).verify(during!.body, during!.headers)).not.toThrow();
    // A day later, the previous secret no longer signs.
    const { Item } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.automation, Key: recordKey(tenant.tenant.id, "webhook", webhook.id) }),
    );
    const dayLater = later(25 * 3_600_000);
    const envelope = {
      version: "0",
      id: "evt_after_the_day",
      "detail-type": "device.quarantined",
      source: "simroot",
      account: "local",
      time: dayLater.now().toISOString(),
      region: "local",
      resources: [],
      detail: {
        id: "evt_after_the_day",
        type: "device.quarantined",
        tenantId: tenant.tenant.id,
        subject: "dev_x",
        time: dayLater.now().toISOString(),
        actor: "test",
        requestId: "req_1",
        data: {},
      },
    } as BusEnvelope;
    const deliveryId = await enqueueDelivery(dayLater, tenant.tenant.id, webhook.id, envelope);
    expect(Item?.previousSealedSecret).toBeDefined();
    expect(deliveryId).toBeDefined();
    await deliverDue(dayLater);
    await hook.next(2);
    const after = hook.received[1]!;
    // Verified as the receiver would, a day later (the library holds the timestamp to its clock's five minutes).
    vi.useFakeTimers({ toFake: ["Date"], now: dayLater.now() });
    try {
      expect(() => new Webhook(rotated.json.secret).verify(after.body, after.headers)).not.toThrow();
      expect(() => new Webhook(webhook.secret).verify(after.body, after.headers)).toThrow(/signature/i);
    } finally {
      vi.useRealTimers();
    }
    // The rotation is audited, without a secret.
    const audit = (await tenant.call("GET", `/v1/audit?subject=${webhook.id}`)).json;
    expect(audit.items.map((record: { action: string }) => record.action)).toContain("webhook.secret-rotated");
    expect(JSON.stringify(audit)).not.toMatch(/whsec_/);
    await hook.close();
  });

  it("rotates only as an admin an admin's subscription, keeps its role, and makes rotations at once one after the other (review 110)", async () => {
    const { tenant, webhook } = await subscribed("v1", "https://hooks.example.com/rotate");
    expect(webhook.role).toBe("admin");
    const operator = (await tenant.call("POST", "/v1/keys", { name: "ops", role: "operator" })).json;
    const refused = await call(runtime, operator.token, "POST", `/v1/webhooks/${webhook.id}/rotate-secret`);
    expect(refused.status, refused.text).toBe(403);
    expect(refused.json.secret).toBeUndefined();
    const answers = await Promise.all([1, 2, 3, 4].map(() => tenant.call("POST", `/v1/webhooks/${webhook.id}/rotate-secret`)));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200]);
    const after = (await tenant.call("GET", `/v1/webhooks/${webhook.id}`)).json;
    expect({ role: after.role, revision: after.revision }).toEqual({ role: "admin", revision: webhook.revision + 4 });
  });

  it("stores the signing secrets sealed: a read of the table (a backup, an export, a console) learns neither secret", async () => {
    const hook = receiver();
    const url = await hook.listening;
    for (const signing of ["v1", "v1a"] as const) {
      const { tenant, webhook } = await subscribed(signing, url);
      const { Item } = await runtime.ports.db.send(
        new GetCommand({ TableName: runtime.ports.tables.automation, Key: recordKey(tenant.tenant.id, "webhook", webhook.id) }),
      );
      const stored = JSON.stringify(Item);
      expect(Item).toBeDefined();
      expect(stored).not.toMatch(/whsec_|whsk_/);
      if (signing === "v1") expect(stored).not.toContain(webhook.secret.slice("whsec_".length));
      // Sealed to its tenant and subscription: moved to another record, it does not open.
      expect(Item!.secret).toBeUndefined();
      const sealed = Item!.sealedSecret as string;
      await expect(runtime.ports.secrets!.open(sealed, { tenantId: "ten_other", record: `webhook/${webhook.id}` })).rejects.toThrow();
      await expect(runtime.ports.secrets!.open(sealed, { tenantId: tenant.tenant.id, record: `webhook/${webhook.id}` })).resolves.toMatch(
        signing === "v1" ? /^whsec_/ : /^whsk_/,
      );
    }
    await hook.close();
  });

  it("signs v1a with ed25519: the public key verifies it, a forged body fails", async () => {
    const hook = receiver();
    const { webhook, quarantine } = await subscribed("v1a", await hook.listening);
    expect(webhook.publicKey).toMatch(/^whpk_/);
    expect(webhook.secret).toBeUndefined();
    await quarantine();
    await hook.next(1);
    const delivery = hook.received[0]!;
    expect(delivery.headers["webhook-signature"]).toMatch(/^v1a,/);
    const verify = (body: string) =>
      simrootAdapterForTests.authenticate(
        { headers: delivery.headers, body, now: new Date() } as never,
        { webhookPublicKey: webhook.publicKey } as never,
      );
    expect(() => verify(delivery.body)).not.toThrow();
    expect(() => verify(delivery.body.replace("quarantined", "reinstated"))).toThrow();
  });

  it("retries a failed delivery with backoff (for more than 72 hours), logs each attempt and can replay it", async () => {
    expect(retryDelaysSeconds.reduce((sum, delay) => sum + delay, 0)).toBeGreaterThan(72 * 3600);
    const hook = receiver();
    hook.script.push(500);
    const { tenant, webhook, quarantine } = await subscribed("v1", await hook.listening);
    await quarantine();
    await hook.next(1);
    await runtime.settled();
    let log = (await tenant.call("GET", `/v1/webhooks/${webhook.id}/deliveries`)).json.items;
    expect(log[0]).toMatchObject({ status: "pending", attemptCount: 1, attempts: [{ status: 500 }] });
    expect(Date.parse(log[0].nextAt) - Date.parse(log[0].attempts[0].at)).toBeGreaterThan(4000);
    expect(await deliverDue(runtime.ports)).toBe(0); // not due yet
    expect(await deliverDue(later(10_000))).toBe(1);
    await hook.next(2);
    log = (await tenant.call("GET", `/v1/webhooks/${webhook.id}/deliveries`)).json.items;
    expect(log[0]).toMatchObject({ status: "delivered", attemptCount: 2, attempts: [{ status: 500 }, { status: 200 }] });
    expect(hook.received[1]!.headers["webhook-id"]).toBe(hook.received[0]!.headers["webhook-id"]);

    const replayed = await tenant.call("POST", `/v1/webhooks/${webhook.id}/deliveries/${log[0].id}/replay`);
    expect([replayed.status, replayed.json.status]).toEqual([202, "pending"]);
    // Due now: the worker's next run sends it (this runtime runs no worker of its own).
    expect(await deliverDue(runtime.ports)).toBe(1);
    await hook.next(3);
    expect(hook.received[2]!.headers["webhook-id"]).toBe(log[0].id);
    await hook.close();
  });

  it("disables the subscription when the receiver answers 410 Gone", async () => {
    const hook = receiver();
    hook.script.push(410);
    const { tenant, webhook, quarantine } = await subscribed("v1", await hook.listening);
    await quarantine();
    await hook.next(1);
    await runtime.settled();
    const after = (await tenant.call("GET", `/v1/webhooks/${webhook.id}`)).json;
    expect(after).toMatchObject({ enabled: false, disabledReason: expect.stringContaining("410") });
    const log = (await tenant.call("GET", `/v1/webhooks/${webhook.id}/deliveries`)).json.items;
    expect(log[0]).toMatchObject({ status: "failed", reason: expect.stringContaining("410") });
    // Replaying it while the subscription is disabled would only fail again: 409, and the delivery is left as it was
    // (review 55: it answered 202 pending, then failed quietly). Enabled again, the replay is taken.
    const refused = await tenant.call("POST", `/v1/webhooks/${webhook.id}/deliveries/${log[0].id}/replay`);
    expect([refused.status, refused.json.type]).toEqual([409, "urn:simroot:problem:webhook.disabled"]);
    expect((await tenant.call("GET", `/v1/webhooks/${webhook.id}/deliveries`)).json.items[0]).toMatchObject({ status: "failed" });
    await tenant.call("PATCH", `/v1/webhooks/${webhook.id}`, { enabled: true }, { "if-match": `"${after.revision}"` });
    expect((await tenant.call("POST", `/v1/webhooks/${webhook.id}/deliveries/${log[0].id}/replay`)).status).toBe(202);
    expect(await deliverDue(runtime.ports)).toBe(1);
    await hook.next(2);
    await hook.close();
  });

  it("loses nothing when the worker is killed with SIGKILL in the middle of a delivery", async () => {
    const hook = receiver();
    hook.script.push("hang");
    const tenant = await tenantClient(runtime, "kill-9");
    const webhook = (await tenant.call("POST", "/v1/webhooks", { url: await hook.listening, pattern: onQuarantine })).json;
    const envelope = {
      version: "0",
      id: "e-1",
      "detail-type": "device.quarantined",
      source: "simroot",
      account: "local",
      time: new Date().toISOString(),
      region: "local",
      resources: [],
      detail: {
        id: "evt_kill9",
        type: "device.quarantined",
        tenantId: tenant.tenant.id,
        subject: "dev_x",
        time: new Date().toISOString(),
        actor: "test",
        requestId: "req_1",
        data: {},
      },
    } as BusEnvelope;
    const id = await enqueueDelivery(runtime.ports, tenant.tenant.id, webhook.id, envelope);

    const child = fork(join(import.meta.dirname, "support", "webhook-worker-child.ts"), {
      env: {
        ...process.env,
        DYNAMODB_ENDPOINT: runtime.endpoint,
        SIMROOT_TABLE_PREFIX: runtime.ports.tables.automation.replace(/automation$/, ""),
        LEASE_MS: "30000",
        SIMROOT_SECRETS_KEY_FILE: secretsKeyPath,
      },
      stdio: "inherit",
    });
    await hook.next(1); // the child is mid-delivery: the receiver holds the request
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));

    expect(await deliverDue(runtime.ports)).toBe(0); // its lease still holds
    expect(await deliverDue(later(31_000))).toBe(1); // then the delivery is due again
    await hook.next(2);
    expect(hook.received.map((request) => request.headers["webhook-id"])).toEqual([id, id]);
    const log = (await tenant.call("GET", `/v1/webhooks/${webhook.id}/deliveries`)).json.items;
    expect(log[0]).toMatchObject({ id, status: "delivered" });
    await hook.close();
  });
});

describe("the limit of 50 subscriptions", () => {
  it("holds when creates race, whether the tenant's count is an item or, for a tenant of before, its listing", async () => {
    const tenant = await tenantClient(runtime, "webhook-limit-race");
    const body = () => ({ url: "https://example.com/hook", pattern: { source: ["simroot"] } });
    for (let n = 0; n < maxWebhooksPerTenant - 2; n++) expect((await tenant.call("POST", "/v1/webhooks", body())).status).toBe(201);
    const countKey = { pk: `T#${tenant.tenant.id}#count`, sk: "webhook" };
    /** A create that, once it has read the count (`read` says which read), lets another create run to its end first. */
    const race = async (read: (command: { constructor: { name: string }; input?: Record<string, unknown> }) => boolean) => {
      const db = runtime.ports.db;
      const send = db.send.bind(db);
      let armed = true;
      let concurrent: Awaited<ReturnType<typeof tenant.call>> | undefined;
      db.send = (async (command: { constructor: { name: string }; input?: Record<string, unknown> }, ...rest: unknown[]) => {
        const result = await send(command as never, ...(rest as []));
        if (armed && read(command)) {
          armed = false;
          concurrent = await tenant.call("POST", "/v1/webhooks", body());
        }
        return result;
      }) as typeof db.send;
      try {
        const first = await tenant.call("POST", "/v1/webhooks", body());
        return [first.status, concurrent?.status].sort();
      } finally {
        db.send = send;
      }
    };
    // A tenant of before the count item: its first create counts the listing (48), and so does the one racing it.
    await runtime.ports.db.send(new DeleteCommand({ TableName: runtime.ports.tables.automation, Key: countKey }));
    const listing = recordKey(tenant.tenant.id, "webhook", "").pk;
    expect(
      await race(
        (command) =>
          command.constructor.name === "QueryCommand" &&
          command.input?.ExpressionAttributeValues !== undefined &&
          Object.values(command.input.ExpressionAttributeValues as object).includes(listing),
      ),
    ).toEqual([201, 409]);
    // 49 now, counted in the item: two creates that both read 49 cannot both make it 50.
    expect(
      await race(
        (command) => command.constructor.name === "GetCommand" && (command.input?.Key as { pk?: string } | undefined)?.pk === countKey.pk,
      ),
    ).toEqual([201, 409]);
    const listed = await tenant.call("GET", "/v1/webhooks?limit=100");
    expect(listed.json.items).toHaveLength(maxWebhooksPerTenant);
    expect((await tenant.call("POST", "/v1/webhooks", body())).json.type).toBe("urn:simroot:problem:webhook.limit_reached");
  });
});
