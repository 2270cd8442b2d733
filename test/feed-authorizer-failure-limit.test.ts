/**
 * Failed authentications at the feed channel's MQTT authorizer (AWS IoT Core's custom authorizer for PEPs, core
 * feed/subscriber-authorizer.ts), counted across its instances through the store as the API counts its 401s. IoT Core
 * names no source address to a custom authorizer (its request carries the MQTT client id, user name and password, the
 * TLS server name and a connection id), so failures are counted per key id, the one the client id and the password
 * name: each wrong secret for a real key cost a consistent read of the key (review 136's read again before refusing),
 * and nothing bounded them, however many client id suffixes carried them. Two instances, each with ports of its own
 * over the same tables (no memory shared, as two Lambda instances), 4 failures a minute.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorizeFeedSubscriber, type MqttAuthorizerRequest } from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { countReads } from "./support/source-reads.ts";

let first: TestRuntime;
let second: TestRuntime;
beforeAll(async () => {
  const tablePrefix = `fal${randomBytes(4).toString("hex")}-`;
  first = await startTestRuntime({ tablePrefix });
  second = await startTestRuntime({ tablePrefix });
});
afterAll(async () => {
  await second.stop();
  await first.stop();
});

const limit = { failures: 4, windowSeconds: 60 };

/** A CONNECT as IoT Core hands it to the authorizer: the password base64, the client id `<key id>.<suffix>`. */
const connect = (clientId: string, token: string): MqttAuthorizerRequest => ({
  protocols: ["tls", "mqtt"],
  protocolData: {
    tls: { serverName: "iot.example" },
    mqtt: { clientId, username: "simroot-pep", password: Buffer.from(token).toString("base64") },
  },
  connectionMetadata: { id: randomBytes(8).toString("hex") },
});

describe("failed authentications at the feed's MQTT authorizer", () => {
  it("are counted per key across instances, and past the limit a wrong secret costs no read of the key, while the key's own secret still connects", async () => {
    // The limit counts in fixed 60 s windows aligned to the clock: failures straddling two of them are counted apart.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 45_000) await sleep(60_000 - intoMinute + 100);
    const admin = await tenantClient(first, "feed-limit");
    const created = await admin.call("POST", "/v1/keys", { name: "site-pep", role: "pep" });
    expect(created.status).toBe(201);
    const token = created.json.token as string;
    const keyId = /^sr_(key_[0-9A-Z]{26})_/.exec(token)![1]!;
    const wrong = `sr_${keyId}_${"A".repeat(43)}`;
    const authorize = async (runtime: TestRuntime, secret: string, suffix = randomBytes(4).toString("hex")) =>
      (await authorizeFeedSubscriber(runtime.ports, connect(`${keyId}.${suffix}`, secret), limit)).isAuthenticated;
    const reads = [first, second].map((runtime) => countReads(runtime, `"K#${keyId}"`));
    const counts = [first, second].map((runtime) => countReads(runtime, `authfail:key:${keyId}`));
    try {
      expect([await authorize(first, wrong), await authorize(first, wrong)]).toEqual([false, false]);
      expect([await authorize(second, wrong), await authorize(second, wrong)]).toEqual([false, false]);
      // Four failures at the two instances together: the one that counted last knows, and reads the key no more for
      // each wrong secret (at most once a second, as its cache does), whatever client id suffix carries it, nor writes
      // its count (the limit is reached: counting on was a write for each read spared).
      reads[1]!.counted.reads = 0;
      counts[1]!.counted.reads = 0;
      for (let n = 0; n < 10; n++) expect(await authorize(second, wrong)).toBe(false);
      expect(reads[1]!.counted.reads).toBeLessThanOrEqual(1);
      expect(counts[1]!.counted.reads).toBe(0);
      // The key's own secret is not refused for its failures: it connects at once, and with its record read again.
      expect(await authorize(second, token)).toBe(true);
      await sleep(1_100);
      expect(await authorize(second, token)).toBe(true);
      // The other instance learns the count when it next counts a failure: one more read at most, then none.
      expect(await authorize(first, wrong)).toBe(false);
      reads[0]!.counted.reads = 0;
      for (let n = 0; n < 10; n++) expect(await authorize(first, wrong)).toBe(false);
      expect(reads[0]!.counted.reads).toBeLessThanOrEqual(1);
      expect(await authorize(first, token)).toBe(true);
    } finally {
      for (const counted of [...reads, ...counts]) counted.stop();
    }
  });
});
