/**
 * Twilio signs the URL it posts to (with `bodySHA256`, the body's hash), not a time: a captured request verifies for
 * ever (review 89). A fact is deduplicated by its key only while its device remembers it: once the SIM is revoked and
 * registered again, to a new device, the replay of a captured attach bound its old address to the new device. Now a
 * signed body is answered once per source for 24 hours (a replay gets the first answer and changes nothing), and an
 * event more than 20 hours old is refused, so no replay outlives what is remembered; nor is one stated more than 4
 * hours ahead, which a replay 24 hours later would find under 20 hours old. Signed with the `twilio` library.
 */
import { createHash } from "node:crypto";
import twilio from "twilio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimIdempotencyKey } from "@simroot/core";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const authToken = "0123456789abcdef0123456789abcdef";
const iccid = "89883070000044236299";

/** A Super SIM data session started at `time`, with address `ip`, as Event Streams posts it. */
const started = (id: string, time: Date, ip: string) =>
  JSON.stringify([
    {
      specversion: "1.0",
      type: "com.twilio.iot.supersim.connection.data-session.started",
      source: "/v1/Sims/HS0099",
      id,
      time: time.toISOString(),
      data: { sim_iccid: iccid, rat_type: "4G LTE", ip_address: ip, timestamp: time.toISOString() },
    },
  ]);

/** The request Twilio sends for `body`: the URL with its hash, signed with the auth token. */
function signedRequest(ingestPath: string, body: string) {
  const path = `${ingestPath}?bodySHA256=${twilio.getExpectedBodyHash(body)}`;
  const signature = twilio.getExpectedTwilioSignature(authToken, `http://localhost${path}`, {});
  return { path, init: { method: "POST", headers: { "content-type": "application/json", "x-twilio-signature": signature }, body } };
}

async function setup(name: string) {
  const tenant = await tenantClient(runtime, name);
  const created = await tenant.call("POST", "/v1/sources", {
    name: "super sim",
    format: "supersim",
    credentials: { twilioAuthToken: authToken },
  });
  expect(created.status, created.text).toBe(201);
  return { tenant, ingestPath: created.json.source.ingestPath as string, sourceId: created.json.source.id as string };
}

describe("a captured Twilio request replayed", () => {
  it("after the SIM moved to a new device, binds nothing to it: the replay gets the first answer", async () => {
    const { tenant, ingestPath } = await setup("twilio-replay");
    const first = (await tenant.call("POST", "/v1/devices", { iccids: [iccid] })).json;
    const captured = signedRequest(ingestPath, started("EZ0099", new Date(), "100.65.9.9"));
    const answered = await runtime.app.request(captured.path, captured.init);
    expect(answered.status).toBe(202);
    const firstAnswer = await answered.json();
    await runtime.settled();
    expect((await tenant.call("GET", `/v1/devices/${first.id}`)).json.identity.sessions.cellular).toMatchObject({ ipv4: "100.65.9.9" });

    // The SIM's device is revoked (its identifiers released) and the SIM registered to a new device.
    expect((await tenant.call("POST", `/v1/devices/${first.id}/revoke`, { reason: "decommissioned" })).status).toBe(200);
    await runtime.settled();
    const second = (await tenant.call("POST", "/v1/devices", { iccids: [iccid] })).json;
    expect(second.id).not.toBe(first.id);

    const replayed = await runtime.app.request(captured.path, captured.init);
    expect(replayed.status).toBe(202);
    expect(await replayed.json()).toEqual(firstAnswer);
    await runtime.settled();
    expect((await tenant.call("GET", `/v1/devices/${second.id}`)).json.identity.sessions.cellular).toBeUndefined();
  });

  it("stating a time more than 20 hours ago (its answer may be forgotten) is refused and changes nothing", async () => {
    const { tenant, ingestPath } = await setup("twilio-old");
    const device = (await tenant.call("POST", "/v1/devices", { iccids: [iccid] })).json;
    const old = signedRequest(ingestPath, started("EZ0100", new Date(Date.now() - 21 * 3600_000), "100.65.9.10"));
    const refused = await runtime.app.request(old.path, old.init);
    expect(refused.status).toBe(400);
    expect(refused.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    const problem = (await refused.json()) as { type: string; errors: { path: string }[] };
    expect([problem.type, problem.errors.map((error) => error.path)]).toEqual(["urn:simroot:problem:ingest.invalid_body", ["0.time"]]);
    await runtime.settled();
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toBeUndefined();
  });

  it("stating a time more than 4 hours ahead (a replay after 24 hours would still be young enough) is refused", async () => {
    const { tenant, ingestPath } = await setup("twilio-ahead");
    const device = (await tenant.call("POST", "/v1/devices", { iccids: [iccid] })).json;
    // Taken now, it would be answered once for 24 hours; replayed 24 hours later it would be 19 hours old, under the 20.
    const ahead = signedRequest(ingestPath, started("EZ0102", new Date(Date.now() + 5 * 3600_000), "100.65.9.12"));
    const refused = await runtime.app.request(ahead.path, ahead.init);
    expect(refused.status).toBe(400);
    const problem = (await refused.json()) as { type: string; errors: { path: string; message: string }[] };
    expect([problem.type, problem.errors.map((error) => error.path)]).toEqual(["urn:simroot:problem:ingest.invalid_body", ["0.time"]]);
    expect(problem.errors[0]!.message).toMatch(/more than 4 hours ahead/);
    await runtime.settled();
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular).toBeUndefined();
  });

  it("while its first delivery is being processed, is refused by the name Twilio knows it by (409)", async () => {
    const { ingestPath, sourceId } = await setup("twilio-in-progress");
    const body = started("EZ0101", new Date(), "100.65.9.11");
    const request = signedRequest(ingestPath, body);
    // The first delivery holds the claim (as it does while it publishes): the same request meanwhile is a conflict.
    const hash = twilio.getExpectedBodyHash(body);
    const fingerprint = createHash("sha256").update(body).digest("base64url");
    expect((await claimIdempotencyKey(runtime.ports, `twilio:${sourceId}`, hash, fingerprint)).kind).toBe("claimed");
    const refused = await runtime.app.request(request.path, request.init);
    expect(refused.status).toBe(409);
    const problem = (await refused.json()) as { type: string; detail: string };
    expect(problem.type).toBe("urn:simroot:problem:ingest.webhook_in_progress");
    expect(problem.detail).toBe(`The request whose body hashes to ${hash} (bodySHA256) is being processed`);
  });
});
