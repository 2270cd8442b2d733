/** Webhook intake as senders' own libraries produce it: cloudevents (binary, structured, batch), twilio, standardwebhooks. */
import { generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { CloudEvent, HTTP } from "cloudevents";
import { Webhook } from "standardwebhooks";
import twilio from "twilio";
import type { Schema } from "@simroot/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const roaming = (id: string, data?: unknown) =>
  new CloudEvent({
    id,
    source: "https://camara.example",
    type: "org.camaraproject.device-roaming-status-subscriptions.v0.roaming-status",
    time: "2026-12-01T10:00:00Z",
    ...(data === undefined ? {} : { data }),
  });
const roamingData = { device: { phoneNumber: "+491701234567" }, roaming: true, countryCode: 262, countryName: ["DE"] };

async function source(format: string, credentials?: Record<string, string>) {
  const tenant = await tenantClient(runtime);
  const created = await tenant.call("POST", "/v1/sources", { name: format, format, ...(credentials ? { credentials } : {}) });
  expect(created.status, created.text).toBe(201);
  return created.json as { source: { ingestPath: string }; credentials: Record<string, string> };
}

const post = async <Body = unknown>(path: string, headers: Record<string, string>, body: string | Uint8Array) => {
  const response = await runtime.app.request(path, { method: "POST", headers, body });
  return { status: response.status, json: (await response.json()) as Body };
};

describe("CloudEvents over HTTP, as the cloudevents SDK emits them", () => {
  it("accepts binary, structured and batch modes, events without data and with data_base64", async () => {
    const { source: camara, credentials } = await source("camara");
    const auth = { authorization: `Bearer ${credentials.bearerToken}` };
    const binary = HTTP.binary(roaming("bin-1", roamingData));
    const structured = HTTP.structured(roaming("str-1", roamingData));
    const withoutData = HTTP.structured(roaming("nodata-1"));
    const base64 = {
      specversion: "1.0",
      id: "b64-1",
      source: "https://camara.example",
      type: "org.camaraproject.device-roaming-status-subscriptions.v0.roaming-status",
      datacontenttype: "application/json",
      data_base64: Buffer.from(JSON.stringify(roamingData)).toString("base64"),
    };
    const cases = [
      ["binary", binary.headers, binary.body],
      ["structured", structured.headers, structured.body],
      [
        "batch",
        { "content-type": "application/cloudevents-batch+json" },
        JSON.stringify([roaming("batch-1", roamingData), roaming("batch-2", roamingData)]),
      ],
      ["no data", withoutData.headers, withoutData.body],
      ["data_base64", { "content-type": "application/cloudevents+json" }, JSON.stringify(base64)],
    ] as const;
    for (const [mode, headers, body] of cases) {
      const result = await post<Schema<"IngestResult">>(
        camara.ingestPath,
        { ...(headers as Record<string, string>), ...auth },
        body as string,
      );
      expect([mode, result.status, result.json.rejected], JSON.stringify(result.json)).toEqual([mode, 202, []]);
      if (mode !== "no data") expect([mode, result.json.accepted[0]?.type]).toEqual([mode, "device.roaming-changed"]);
    }
  });
});

describe("Twilio signatures, as the twilio library computes them", () => {
  const events = JSON.stringify([
    {
      specversion: "1.0",
      type: "com.twilio.iot.supersim.connection.data-session.started",
      source: "/v1/Sims/HS0001",
      id: "EZ0001",
      // Now: a Super SIM event over 20 hours old is refused (review 89).
      time: new Date().toISOString(),
      data: { sim_iccid: "89883070000044236204", rat_type: "4G LTE", timestamp: new Date().toISOString() },
    },
  ]);
  const authToken = "0123456789abcdef0123456789abcdef";

  it("verifies behind a TLS-terminating proxy, from X-Forwarded-Proto/Host or the configured public base URL", async () => {
    const { source: supersim } = await source("supersim", { twilioAuthToken: authToken });
    const path = `${supersim.ingestPath}?bodySHA256=${twilio.getExpectedBodyHash(events)}`;
    const publicUrl = `https://api.simroot.example${path}`;
    const signature = twilio.getExpectedTwilioSignature(authToken, publicUrl, {});
    // The proxy forwards to http://localhost; the sender signed the public https URL.
    const forwarded = {
      "content-type": "application/json",
      "x-twilio-signature": signature,
      "x-forwarded-proto": "https",
      "x-forwarded-host": "api.simroot.example",
    };
    expect((await post(path, forwarded, events)).status).toBe(202);
    const bare = { "content-type": "application/json", "x-twilio-signature": signature };
    expect((await post(path, bare, events)).status).toBe(401);
    process.env["SIMROOT_PUBLIC_BASE_URL"] = "https://api.simroot.example";
    try {
      expect((await post(path, bare, events)).status).toBe(202);
    } finally {
      delete process.env["SIMROOT_PUBLIC_BASE_URL"];
    }
  });

  it("verifies SharedKey webhooks signed with HMAC_SHA256", async () => {
    const sharedKey = "shared-key-secret-0123456789";
    const { source: supersim } = await source("supersim", { twilioAuthToken: authToken, twilioSharedKeySecret: sharedKey });
    const path = `${supersim.ingestPath}?bodySHA256=${twilio.getExpectedBodyHash(events)}`;
    const url = `http://localhost${path}`;
    const signature = twilio.getExpectedTwilioSignature(sharedKey, url, {}, "HMAC_SHA256");
    const headers = {
      "content-type": "application/json",
      "x-twilio-signature": signature,
      "x-twilio-webhooks-signature-settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256",
    };
    expect(twilio.validateRequestWithBody(sharedKey, signature, url, events, "HMAC_SHA256")).toBe(true);
    expect((await post(path, headers, events)).status).toBe(202);
    expect((await post(path, { ...headers, "x-twilio-webhooks-signature-settings": "key=k,algorithm=HMAC_SHA1" }, events)).status).toBe(
      401,
    );
  });
});

describe("Standard Webhooks, as the standardwebhooks library signs them", () => {
  const event = {
    type: "device.reachability-changed",
    dedupeKey: "bom-1",
    occurredAt: "2026-12-01T10:00:00.000Z",
    device: { imsi: "208011234567899" },
    sourceType: "reach",
    data: { reachable: true },
  };

  it("verifies the signature over the raw bytes: a body with a BOM is accepted", async () => {
    const { source: feed, credentials } = await source("simroot");
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(event))]);
    const sentAt = new Date();
    const headers = {
      "content-type": "application/json",
      "webhook-id": "msg_bom",
      "webhook-timestamp": String(Math.floor(sentAt.getTime() / 1000)),
      "webhook-signature": new Webhook(credentials.webhookSecret!).sign("msg_bom", sentAt, bytes),
    };
    const result = await post(feed.ingestPath, headers, bytes);
    expect(result.status).toBe(202);
  });

  it("refuses a malformed whpk_ key when the source is created, and takes a real one", async () => {
    const tenant = await tenantClient(runtime);
    const bad = await tenant.call("POST", "/v1/sources", {
      name: "bad",
      format: "simroot",
      credentials: { webhookPublicKey: "whpk_not-a-key-at-all-but-long-enough-to-pass-min" },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.errors.map((error: { path: string }) => error.path)).toContain("credentials.webhookPublicKey");
    const raw = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(12);
    const good = await tenant.call("POST", "/v1/sources", {
      name: "good",
      format: "simroot",
      credentials: { webhookPublicKey: `whpk_${raw.toString("base64")}` },
    });
    expect(good.status).toBe(201);
  });

  it("a source given a public key holds no secret, accepts v1a signatures only and is rotated to a new key (review 80)", async () => {
    const tenant = await tenantClient(runtime);
    const whpkOf = (key: KeyObject) => `whpk_${key.export({ format: "der", type: "spki" }).subarray(12).toString("base64")}`;
    const first = generateKeyPairSync("ed25519");
    const created = await tenant.call("POST", "/v1/sources", {
      name: "asymmetric",
      format: "simroot",
      credentials: { webhookPublicKey: whpkOf(first.publicKey) },
    });
    expect(created.status, created.text).toBe(201);
    // Before: a generated whsec_ secret came back beside the key, and v1 signatures made with it were accepted.
    expect(created.json.credentials).toEqual({ webhookPublicKey: whpkOf(first.publicKey) });
    const { id, ingestPath } = created.json.source as { id: string; ingestPath: string };
    const body = JSON.stringify(event);
    const headersOf = (signature: (id: string, timestamp: string) => string) => {
      const webhookId = `msg_${randomBytes(6).toString("hex")}`;
      const timestamp = String(Math.floor(Date.now() / 1000));
      return {
        "content-type": "application/json",
        "webhook-id": webhookId,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature(webhookId, timestamp),
      };
    };
    const v1a = (key: KeyObject) => headersOf((id, ts) => `v1a,${sign(null, Buffer.from(`${id}.${ts}.${body}`), key).toString("base64")}`);
    const v1 = (secret: string) => headersOf((id, ts) => new Webhook(secret).sign(id, new Date(Number(ts) * 1000), body));
    expect((await post(ingestPath, v1a(first.privateKey), body)).status).toBe(202);

    // A source created with a key before review 80 holds a secret too: the key wins, the secret signs nothing.
    const storedSecret = `whsec_${randomBytes(24).toString("base64")}`;
    await runtime.ports.db.send(
      new UpdateCommand({
        TableName: runtime.ports.tables.control,
        Key: { pk: `SRC#${id}`, sk: "source" },
        UpdateExpression: "SET credentials.webhookSecret = :secret",
        ExpressionAttributeValues: { ":secret": storedSecret },
      }),
    );
    const forged = await post<{ type: string }>(ingestPath, v1(storedSecret), body);
    expect([forged.status, forged.json.type]).toEqual([401, "urn:simroot:problem:ingest.unauthenticated"]);
    expect((await post(ingestPath, v1a(first.privateKey), body)).status).toBe(202);

    // A key and a secret together are refused; a bare rotation would swap the key for a generated secret: refused too.
    const both = await tenant.call("POST", "/v1/sources", {
      name: "both",
      format: "simroot",
      credentials: { webhookPublicKey: whpkOf(first.publicKey), webhookSecret: storedSecret },
    });
    expect([both.status, both.json.type]).toEqual([400, "urn:simroot:problem:source.credentials_conflict"]);
    const bare = await tenant.call("POST", `/v1/sources/${id}/rotate`, {});
    expect([bare.status, bare.json.type]).toEqual([400, "urn:simroot:problem:source.credentials_required"]);
    expect((await post(ingestPath, v1a(first.privateKey), body)).status).toBe(202);

    const second = generateKeyPairSync("ed25519");
    const rotated = await tenant.call("POST", `/v1/sources/${id}/rotate`, { credentials: { webhookPublicKey: whpkOf(second.publicKey) } });
    expect(rotated.status, rotated.text).toBe(200);
    expect(rotated.json.credentials).toEqual({ webhookPublicKey: whpkOf(second.publicKey) });
    expect((await post(ingestPath, v1a(first.privateKey), body)).status).toBe(401);
    expect((await post(ingestPath, v1(storedSecret), body)).status).toBe(401);
    expect((await post(ingestPath, v1a(second.privateKey), body)).status).toBe(202);
  });
});
