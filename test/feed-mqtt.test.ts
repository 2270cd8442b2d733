/**
 * The feed's push channel over MQTT, as PEPs follow it in AWS (IoT Core) and locally (the feed hub's MQTT side): a real
 * MQTT client (MQTT.js, the PEP's) against a real broker (aedes) that decides each CONNECT with the feed's custom
 * authorizer (core feed/subscriber-authorizer.ts, the function IoT Core invokes) and holds clients to the policy it
 * returns, as IoT Core does.
 */
import { createPublicKey } from "node:crypto";
import { connect, type MqttClient } from "mqtt";
import { Ajv2020 } from "ajv/dist/2020.js";
import { asyncApiDocument, feedClientId, feedTopic, type FeedResponse, type MqttAuthorizerResponse } from "@simroot/core";
import { feedBareTopic } from "@simroot/core/feed/notifier";
import { iotMessageUnitBytes, noticeText } from "@simroot/core/feed/notifier";
import { startFeedHub } from "@simroot/local/feed-hub";
import { policyAllows } from "@simroot/local/feed-hub-mqtt";
import { mqttTrigger, PepEngine } from "@simroot/pep";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { noticesOnly, pushedPep } from "./support/feed-polls.ts";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  // The hub asks the authorizer again every second (IoT Core: every refreshAfterInSeconds, at least 300).
  runtime = await startTestRuntime({ port: 0, feedMqttRefreshSeconds: 1 });
}, 60_000);
afterAll(async () => {
  await runtime?.stop();
});

const clients: MqttClient[] = [];
afterAll(() => {
  for (const client of clients) client.end(true);
});

/** Connects as a PEP would; resolves once CONNACK accepted it, or with the broker's refusal. */
function connectAs(apiKey: string, clientId: string): Promise<{ client: MqttClient; error?: Error }> {
  const client = connect(runtime.feedMqttUrl!, {
    clientId,
    username: "simroot-pep",
    password: apiKey,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  clients.push(client);
  return new Promise((resolve) => {
    client.once("connect", () => resolve({ client }));
    client.once("error", (error) => resolve({ client, error }));
  });
}

/** The QoS the broker granted the subscription: 128 is its refusal (MQTT.js reports it as an error carrying the SUBACK). */
const subscribe = (client: MqttClient, topic: string) =>
  new Promise<number | undefined>((resolve, reject) =>
    client.subscribe(topic, { qos: 1 }, (error, granted) => {
      const suback = (error as { packet?: { granted?: number[] } } | null)?.packet?.granted;
      if (error) return suback ? resolve(suback[0]) : reject(error);
      resolve(granted?.[0]?.qos);
    }),
  );

/** Every payload a client receives, by topic: as received, and as the notice's JSON text (inflated when gzipped). */
function inbox(client: MqttClient) {
  const received: { topic: string; bytes: Buffer; payload: string }[] = [];
  client.on("message", (topic, bytes) => received.push({ topic, bytes, payload: noticeText(bytes) ?? "" }));
  return received;
}

async function pepKey(admin: Awaited<ReturnType<typeof tenantClient>>, role = "pep") {
  const created = await admin.call("POST", "/v1/keys", { name: `${role}-${Math.random()}`, role });
  expect(created.status).toBe(201);
  return { token: created.json.token as string, id: created.json.key?.id ?? created.json.id };
}

describe("PEPs on the feed's push channel over MQTT", () => {
  it("learn a revocation from the notice itself, signed: no long poll, and no request for it", async () => {
    const admin = await tenantClient(runtime, "mqtt-revocation");
    const { token } = await pepKey(admin);
    const device = (await admin.call("POST", "/v1/devices", { imsi: "208010000007001" })).json;
    const publicKey = createPublicKey((await call(runtime, token, "GET", "/v1/feed/keys")).json.keys[0].publicKeyPem);
    const errors: Error[] = [];
    // No idle poll (the head's refresh, 4 s after each poll): only the channel wakes this PEP, so the revocation can
    // reach it by the notice alone, however slow the machine (an idle poll that came first had left the notice nothing).
    const trigger = noticesOnly(mqttTrigger({ url: runtime.feedMqttUrl!, apiKey: token, onError: (error) => errors.push(error) }));
    const { state, sync, polls } = await pushedPep({ url: runtime.url!, apiKey: token, publicKey, tenantId: admin.tenant.id, trigger });
    const engine = new PepEngine(state);
    try {
      const decide = () => engine.decide({ deviceId: device.id, destination: { ip: "10.0.0.1" }, port: 443, protocol: "tcp" }).reason;
      expect(decide()).not.toBe("deny.revoked");
      // Subscribed, and idle: the snapshot, the poll after it and the one the subscription's first wake-up made were
      // answered (the channel's wake-ups are all that make it poll now), and none is under way.
      await expect.poll(() => polls.answered >= 3 && polls.inFlight === 0, { timeout: 10_000 }).toBe(true);
      const requests = polls.waits.length;
      expect((await admin.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
      await expect.poll(decide, { timeout: 20_000, interval: 20 }).toBe("deny.revoked");
      // The notice carried the change, signed with the feed key: verified and applied with no request made since the
      // commit (a poll that had brought it first would have left the notice nothing to apply).
      expect(polls.waits.length).toBe(requests);
      expect(sync.stats).toMatchObject({ pushed: 1, pushedRefused: 0 });
      expect(polls.waits.filter((wait) => wait !== "" && wait !== "0")).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await sync.stop();
      trigger.close();
    }
  }, 60_000);

  it("learn a change too large for one IoT Core message from the notice, gzipped into one", async () => {
    const admin = await tenantClient(runtime, "mqtt-gzip");
    const { token } = await pepKey(admin);
    const created = await admin.call("POST", "/v1/devices", { imsi: "208010000007101" });
    const device = created.json;
    const publicKey = createPublicKey((await call(runtime, token, "GET", "/v1/feed/keys")).json.keys[0].publicKeyPem);
    const errors: Error[] = [];
    const listener = await connectAs(token, feedClientId(token, "gzip"));
    const received = inbox(listener.client);
    expect(await subscribe(listener.client, feedTopic(admin.tenant.id))).toBe(1);
    // Only the channel wakes this PEP (no idle poll): the change can reach it by the notice alone (see the test above).
    const trigger = noticesOnly(mqttTrigger({ url: runtime.feedMqttUrl!, apiKey: token, onError: (error) => errors.push(error) }));
    const { state, sync, polls } = await pushedPep({ url: runtime.url!, apiKey: token, publicKey, tenantId: admin.tenant.id, trigger });
    try {
      await expect.poll(() => polls.answered >= 3 && polls.inFlight === 0, { timeout: 10_000 }).toBe(true);
      const requests = polls.waits.length;
      // 60 labels of 63-character values: the device's entry alone is over 5 KB of JSON (a relabelling is announced at once).
      const labels = Object.fromEntries(Array.from({ length: 60 }, (_, n) => [`site-${n}`, `${n}`.padEnd(63, "abcdefghij")]));
      const relabelled = await admin.call("PATCH", `/v1/devices/${device.id}`, { labels }, { "if-match": created.headers.get("etag")! });
      expect(relabelled.status).toBe(200);
      await expect.poll(() => state.devices.get(device.id)?.labels["site-59"], { timeout: 20_000, interval: 20 }).toBe(labels["site-59"]);
      // Applied from the notice (no request since the change); on the wire gzipped, one IoT Core message where the JSON is two.
      expect(polls.waits.length).toBe(requests);
      expect(sync.stats).toMatchObject({ pushed: 1, pushedRefused: 0 });
      expect(polls.waits.filter((wait) => wait !== "" && wait !== "0")).toEqual([]);
      const carrying = received.find(({ payload }) => payload.includes('"response"'))!;
      expect([carrying.bytes[0], carrying.bytes[1]]).toEqual([0x1f, 0x8b]);
      expect(Buffer.byteLength(carrying.payload)).toBeGreaterThan(iotMessageUnitBytes);
      expect(carrying.bytes.byteLength).toBeLessThanOrEqual(iotMessageUnitBytes);
      expect(errors).toEqual([]);
    } finally {
      await sync.stop();
      trigger.close();
      listener.client.end(true);
    }
  }, 60_000);

  it("send notices as the AsyncAPI document describes them, carrying the change they announce", async () => {
    const admin = await tenantClient(runtime, "mqtt-contract");
    const { token } = await pepKey(admin);
    const listener = await connectAs(token, feedClientId(token, "contract"));
    expect(listener.error).toBeUndefined();
    const received = inbox(listener.client);
    expect(await subscribe(listener.client, feedTopic(admin.tenant.id))).toBe(1);
    const device = (await admin.call("POST", "/v1/devices", { imsi: "208010000007201" })).json;
    expect((await admin.call("POST", `/v1/devices/${device.id}/revoke`, { reason: "lost" })).status).toBe(200);
    // A revocation is announced at once by the run that sequenced it, carrying it signed (a registration right after the
    // tenant's set-up waits for the next notice or the backstop's trailing one, which is bare).
    const parsed = () => received.map(({ payload }) => JSON.parse(payload) as { version: number; response?: FeedResponse });
    await expect.poll(() => parsed().some((notice) => notice.response), { timeout: 5_000 }).toBe(true);
    const document = asyncApiDocument();
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addSchema(document, "asyncapi");
    const valid = ajv.getSchema("asyncapi#/components/messages/feedNotice/payload")!;
    for (const { topic } of received) expect(topic).toBe(document.channels.feedNotices.address.replace("{tenantId}", admin.tenant.id));
    for (const notice of parsed()) expect(valid(notice), JSON.stringify(valid.errors)).toBe(true);
    // Large notices travel gzipped (the test above): the channel declares that form too, and what it inflates to is a notice.
    expect(document.channels.feedNotices.messages.feedNoticeGzipped).toEqual({ $ref: "#/components/messages/feedNoticeGzipped" });
    expect((document.components.messages.feedNoticeGzipped as { contentType?: string }).contentType).toBe("application/gzip");
    const carrying = parsed().find((notice) => notice.response);
    expect(carrying?.response?.signed.head).toMatchObject({ tenantId: admin.tenant.id, kind: "delta", version: carrying?.version });
    listener.client.end(true);
  });

  it("admit a feed key to receive its own tenant's notices only: not another tenant's, and never to speak on the channel", async () => {
    const a = await tenantClient(runtime, "mqtt-a");
    const b = await tenantClient(runtime, "mqtt-b");
    const { token } = await pepKey(a);
    const viewer = await pepKey(a, "viewer");
    const otherPep = await pepKey(a);

    // Refused at CONNECT: a key whose role does not read the feed, a key presented under another key's client id, a wrong secret.
    expect((await connectAs(viewer.token, feedClientId(viewer.token, "x"))).error?.message).toMatch(/not authorized/i);
    expect((await connectAs(token, feedClientId(otherPep.token, "x"))).error?.message).toMatch(/not authorized/i);
    const forgedSecret = token.replace(
      /_([A-Za-z0-9_-]{43})$/,
      (_, secret: string) => `_${secret.startsWith("A") ? "B" : "A"}${secret.slice(1)}`,
    );
    expect((await connectAs(forgedSecret, feedClientId(token, "x"))).error?.message).toMatch(/not authorized/i);

    const listener = await connectAs(token, feedClientId(token, "listener"));
    expect(listener.error).toBeUndefined();
    const received = inbox(listener.client);
    expect(await subscribe(listener.client, feedTopic(b.tenant.id))).toBe(128);
    expect(await subscribe(listener.client, "simroot/#")).toBe(128);
    expect(await subscribe(listener.client, feedTopic(a.tenant.id))).toBe(1);

    // A subscriber that publishes a notice on its tenant's topic is disconnected; nobody receives the forgery.
    const speaker = await connectAs(token, feedClientId(token, "speaker"));
    expect(speaker.error).toBeUndefined();
    const closed = new Promise<void>((resolve) => speaker.client.once("close", () => resolve()));
    speaker.client.publish(feedTopic(a.tenant.id), JSON.stringify({ tenantId: a.tenant.id, version: 999_999 }), { qos: 1 });
    await closed;

    // B's change is not told to A's PEP; A's own is.
    expect((await b.call("POST", "/v1/devices", { imsi: "208010000007101" })).status).toBe(201);
    expect((await a.call("POST", "/v1/devices", { imsi: "208010000007102" })).status).toBe(201);
    await expect.poll(() => received.length, { timeout: 5_000 }).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received.every(({ topic }) => topic === feedTopic(a.tenant.id))).toBe(true);
    const versions = received.map(({ payload }) => JSON.parse(payload) as { tenantId: string; version: number });
    expect(versions.every((notice) => notice.tenantId === a.tenant.id && notice.version < 999_999)).toBe(true);
    const head = ((await call(runtime, token, "GET", "/v1/feed")).json as FeedResponse).signed.head.version;
    expect(Math.max(...versions.map((notice) => notice.version))).toBe(head);
  }, 60_000);

  it("give a key bound to a selector the bare notices only: no other site's devices in a delta (review 98)", async () => {
    const admin = await tenantClient(runtime, "mqtt-bound");
    const bound = await admin.call("POST", "/v1/keys", { name: "north", role: "pep", selector: "site=north" });
    expect(bound.status).toBe(201);
    const token = bound.json.token as string;
    const whole = await pepKey(admin);
    const narrowed = await connectAs(token, feedClientId(token, "north"));
    const everything = await connectAs(whole.token, feedClientId(whole.token, "all"));
    const [boundInbox, wholeInbox] = [inbox(narrowed.client), inbox(everything.client)];
    expect(await subscribe(narrowed.client, feedTopic(admin.tenant.id))).toBe(128);
    expect(await subscribe(narrowed.client, feedBareTopic(admin.tenant.id))).toBe(1);
    expect(await subscribe(everything.client, feedTopic(admin.tenant.id))).toBe(1);
    // Any feed key may follow the bare notices (a PEP narrowed to a selector does, whatever its key: review 99).
    const unboundBare = await connectAs(whole.token, feedClientId(whole.token, "bare"));
    expect(await subscribe(unboundBare.client, feedBareTopic(admin.tenant.id))).toBe(1);
    unboundBare.client.end(true);

    const south = await admin.call("POST", "/v1/devices", { imsi: "208010000007201", labels: { site: "south", customer: "hidden-co" } });
    expect(south.status).toBe(201);
    await expect.poll(() => wholeInbox.some(({ payload }) => payload.includes("hidden-co")), { timeout: 5_000 }).toBe(true);
    const head = ((await call(runtime, whole.token, "GET", "/v1/feed")).json as FeedResponse).signed.head.version;
    await expect.poll(() => boundInbox.map(({ payload }) => JSON.parse(payload).version), { timeout: 5_000 }).toContain(head);
    for (const { topic, payload } of boundInbox) {
      expect(topic).toBe(feedBareTopic(admin.tenant.id));
      expect(Object.keys(JSON.parse(payload)).sort()).toEqual(["tenantId", "version"]);
    }
    // A PEP with its bound key, though not told to follow the bare notices, is refused the deltas and follows them
    // (review 99: it stayed on a refused topic), woken by its own site's change.
    const errors: Error[] = [];
    const trigger = mqttTrigger({ url: runtime.feedMqttUrl!, apiKey: token, onError: (error) => errors.push(error) });
    try {
      const never = new AbortController().signal;
      await trigger.wait(admin.tenant.id, head, 10_000, never);
      const woken = trigger.wait(admin.tenant.id, head, 30_000, never).then(() => Date.now());
      const sent = Date.now();
      expect((await admin.call("POST", "/v1/devices", { imsi: "208010000007202", labels: { site: "north" } })).status).toBe(201);
      expect((await woken) - sent).toBeLessThan(10_000);
      expect(errors).toEqual([]);
    } finally {
      trigger.close();
      narrowed.client.end(true);
      everything.client.end(true);
    }
  }, 60_000);

  it("disconnect a PEP whose key is revoked, at the authorizer's next refresh", async () => {
    const admin = await tenantClient(runtime, "mqtt-revoked-key");
    const key = await pepKey(admin);
    const { client, error } = await connectAs(key.token, feedClientId(key.token, "soon-revoked"));
    expect(error).toBeUndefined();
    const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
    let stillOpen = true;
    void closed.then(() => (stillOpen = false));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    // Refreshed at least once while the key was valid: still connected.
    expect(stillOpen).toBe(true);
    const keyId = /^sr_(key_[0-9A-Z]+)_/.exec(key.token)![1]!;
    expect((await admin.call("DELETE", `/v1/keys/${keyId}`)).status).toBe(200);
    await expect.poll(() => stillOpen, { timeout: 5_000 }).toBe(false);
    // And it cannot come back.
    expect((await connectAs(key.token, feedClientId(key.token, "again"))).error?.message).toMatch(/not authorized/i);
  }, 60_000);
});

describe("the local broker holds clients to their policy, as IoT Core does", () => {
  const allow = (statements: { Action: string; Resource: string }[]): MqttAuthorizerResponse => ({
    isAuthenticated: true,
    principalId: "p",
    disconnectAfterInSeconds: 3600,
    refreshAfterInSeconds: 300,
    policyDocuments: [{ Version: "2012-10-17", Statement: statements.map((statement) => ({ Effect: "Allow" as const, ...statement })) }],
  });

  it("checks Receive on every message, apart from Subscribe, and no wildcard crosses an ARN segment", async () => {
    // A policy that may subscribe to every feed topic but receive one tenant's only: the broker must still withhold the rest.
    const hub = await startFeedHub({
      authorize: async () =>
        allow([
          { Action: "iot:Connect", Resource: "arn:aws:iot:*:*:client/*" },
          { Action: "iot:Subscribe", Resource: "arn:aws:iot:*:*:topicfilter/simroot/*" },
          { Action: "iot:Receive", Resource: "arn:aws:iot:*:*:topic/simroot/ten_a/feed" },
        ]),
    });
    try {
      const client = connect(hub.mqttUrl!, { clientId: "c1", username: "u", password: "p", reconnectPeriod: 0, protocolVersion: 4 });
      await new Promise((resolve, reject) => client.once("connect", resolve).once("error", reject));
      const received = inbox(client);
      expect(await subscribe(client, "simroot/#")).toBe(1);
      for (const tenant of ["ten_b", "ten_a"]) {
        const response = await fetch(`${hub.url}/topics/${encodeURIComponent(feedTopic(tenant))}?qos=1`, {
          method: "POST",
          body: JSON.stringify({ tenantId: tenant, version: 1 }),
        });
        expect(response.status).toBe(200);
      }
      await expect.poll(() => received.length, { timeout: 2_000 }).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(received.map(({ topic }) => topic)).toEqual([feedTopic("ten_a")]);
      client.end(true);
    } finally {
      await hub.close();
    }
    // `*` in the region or account matches within that segment only, as IAM's ARN matching does.
    const policy = allow([{ Action: "iot:Subscribe", Resource: "arn:aws:iot:*:*:topicfilter/simroot/ten_a/feed" }]).policyDocuments;
    expect(policyAllows(policy, "iot:Subscribe", "topicfilter", "simroot/ten_a/feed")).toBe(true);
    expect(policyAllows(policy, "iot:Subscribe", "topicfilter", "+/x:topicfilter/simroot/ten_a/feed")).toBe(false);
  });
});

describe("a PEP's MQTT trigger, against a failing channel", () => {
  const tenantId = "ten_trigger";
  const apiKey = `sr_key_${"0".repeat(26)}_${"a".repeat(43)}`;
  const granted: MqttAuthorizerResponse = {
    isAuthenticated: true,
    principalId: "pep",
    disconnectAfterInSeconds: 3600,
    refreshAfterInSeconds: 300,
    policyDocuments: [
      {
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Action: "iot:Connect", Resource: "arn:aws:iot:*:*:client/*" },
          { Effect: "Allow", Action: ["iot:Subscribe"], Resource: `arn:aws:iot:*:*:topicfilter/${feedTopic(tenantId)}` },
          { Effect: "Allow", Action: ["iot:Receive"], Resource: `arn:aws:iot:*:*:topic/${feedTopic(tenantId)}` },
        ],
      },
    ],
  };
  const notice = (hubUrl: string, version: number) =>
    fetch(`${hubUrl}/topics/${encodeURIComponent(feedTopic(tenantId))}?qos=1`, {
      method: "POST",
      body: JSON.stringify({ tenantId, version }),
    });
  const retryMs = { dropped: 50, refused: 400, max: 2_000 };

  it("connects again after the authorizer failed, and then hears notices", async () => {
    let calls = 0;
    const hub = await startFeedHub({
      authorize: async () => {
        calls++;
        if (calls === 1) throw new Error("the store is unavailable");
        return granted;
      },
    });
    const errors: Error[] = [];
    const trigger = mqttTrigger({ url: hub.mqttUrl!, apiKey, retryMs, onError: (error) => errors.push(error) });
    const stop = new AbortController();
    try {
      // The first wake-up is the subscription granted on the second attempt (notices before it were lost), not the wait's end.
      const first = Date.now();
      await trigger.wait(tenantId, 5, 10_000, stop.signal);
      expect(Date.now() - first).toBeLessThan(3_000);
      expect(calls).toBe(2);
      expect(errors.map((error) => error.message).join()).toMatch(/unavailable/i);
      const woken = trigger.wait(tenantId, 5, 10_000, stop.signal);
      const started = Date.now();
      expect((await notice(hub.url, 6)).status).toBe(200);
      await woken;
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      trigger.close();
      await hub.close();
    }
  });

  it("wakes its waiter once subscribed: a notice sent before the first subscription is not waited out", async () => {
    const hub = await startFeedHub({
      authorize: async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return granted;
      },
    });
    const trigger = mqttTrigger({ url: hub.mqttUrl!, apiKey, retryMs });
    const stop = new AbortController();
    try {
      const started = Date.now();
      const woken = trigger.wait(tenantId, 5, 10_000, stop.signal);
      // Published while the PEP is still being authorized: no subscriber hears it.
      setTimeout(() => void notice(hub.url, 6), 100);
      await woken;
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      trigger.close();
      await hub.close();
    }
  });

  it("backs off when refused as not authorized instead of asking the authorizer every few milliseconds", async () => {
    let calls = 0;
    const hub = await startFeedHub({
      authorize: async () => {
        calls++;
        return { ...granted, isAuthenticated: false, policyDocuments: [] };
      },
    });
    const trigger = mqttTrigger({ url: hub.mqttUrl!, apiKey, retryMs, onError: () => {} });
    const stop = new AbortController();
    try {
      void trigger.wait(tenantId, 5, 60_000, stop.signal);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      // Refusals wait 200 to 400 ms, then 400 to 800, then 800 to 1,600: at most four attempts in 1.5 s, and more than one.
      expect(calls).toBeGreaterThanOrEqual(2);
      expect(calls).toBeLessThanOrEqual(4);
    } finally {
      stop.abort();
      trigger.close();
      await hub.close();
    }
  });
});
