import type { Schema } from "@simroot/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { maxAnswerBytes } from "@simroot/core/ingest/ingest";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const imsi = "208011234567890";
let sequence = 0;
const fact = (type: string, data: Record<string, unknown>, minute: number, device: Record<string, string> = { imsi }) => ({
  type,
  dedupeKey: `fact-${++sequence}`,
  occurredAt: new Date(Date.UTC(2026, 10, 22, 6, minute)).toISOString(),
  device,
  sourceType: type,
  data,
});

async function setup() {
  const tenant = await tenantClient(runtime);
  const created = await tenant.call("POST", "/v1/sources", { name: "our normalized feed", format: "simroot" });
  expect(created.status).toBe(201);
  const { source, credentials } = created.json;
  const post = async <Body = unknown>(body: unknown, headers?: Record<string, string>) => {
    const text = JSON.stringify(body);
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: headers ?? standardWebhookHeaders(credentials.webhookSecret, text),
      body: text,
    });
    await runtime.settled();
    return { status: response.status, json: (await response.json()) as Body };
  };
  const device = async (id: string) => (await tenant.call("GET", `/v1/devices/${id}`)).json;
  const auditCount = async () => (await tenant.call("GET", "/v1/audit?limit=1000")).json.items.length;
  return { tenant, source, credentials, post, device, auditCount };
}

/** A simroot item with a dozen wrong fields: 172 bytes, about 1 KB of errors in an answer. */
const twelveWrongFields = {
  type: "sim.attached",
  dedupeKey: 1,
  occurredAt: 2,
  device: { imsi: 3, iccid: 4, imei: 5 },
  sourceType: 6,
  data: { bearer: 7, rat: 8, plmn: 9, apn: 10, ipv4: 11, ipv6: 12 },
};

describe("operator events drive the SIM identity lifecycle", () => {
  it("applies an attach and a roaming change, with the IP binding, timeline and audit to show for it", async () => {
    const { tenant, post, device } = await setup();
    const registered = (await tenant.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters" } })).json;
    const result = await post<Schema<"IngestResult">>([
      fact("sim.attached", { bearer: "cellular", rat: "NR", plmn: { mcc: "208", mnc: "01" }, apn: "iot.acme", ipv4: "10.20.0.7" }, 1),
      fact("device.roaming-changed", { roaming: true, mcc: "262" }, 2),
    ]);
    expect(result.status).toBe(202);
    expect(result.json.accepted.map((item) => item.type)).toEqual(["sim.attached", "device.roaming-changed"]);
    expect(result.json.rejected).toEqual([]);

    const now = await device(registered.id);
    expect(now.identity.sessions.cellular).toMatchObject({ ipv4: "10.20.0.7", apn: "iot.acme", country: "FR", rat: "NR" });
    expect(now.identity.roaming).toMatchObject({ roaming: true, country: "DE" });
    expect(now.revision).toBe(3);

    const timeline = (await tenant.call("GET", `/v1/devices/${registered.id}/timeline`)).json.items.map(
      (entry: { type: string }) => entry.type,
    );
    // The two facts of one webhook are applied concurrently: the timeline records them in the order they committed.
    expect(timeline[0]).toBe("device.registered");
    expect([...timeline].sort()).toEqual(["device.registered", "device.roaming-changed", "sim.attached"]);
    const audit = (await tenant.call("GET", `/v1/audit?subject=${registered.id}`)).json.items;
    expect(audit.map((record: { action: string }) => record.action)).toEqual(timeline);
    expect(audit[1].actor).toMatch(/^source:src_/);
    // tenant.created and source.created, then the three of the device.
    expect((await tenant.call("GET", "/v1/audit/verify")).json).toMatchObject({ valid: true, checked: 5 });
  });

  it("moves the session and binding on a bearer switch and closes them on detach; the IP resolves the device meanwhile", async () => {
    const { tenant, post, device } = await setup();
    const registered = (await tenant.call("POST", "/v1/devices", { imsi })).json;
    await post([fact("sim.attached", { bearer: "cellular", ipv4: "10.20.0.8" }, 1)]);
    await post([fact("bearer.switched", { bearer: "wifi", rat: "WLAN", ipv4: "10.30.0.8" }, 2)]);
    expect(Object.keys((await device(registered.id)).identity.sessions)).toEqual(["wifi"]);
    // A report naming the device only by its current address reaches it.
    await post([fact("device.reachability-changed", { reachable: false }, 3, { ip: "10.30.0.8" })]);
    expect((await device(registered.id)).identity.reachable).toMatchObject({ reachable: false });
    await post([fact("sim.detached", {}, 4)]);
    expect((await device(registered.id)).identity.sessions).toEqual({});
    const timeline = (await tenant.call("GET", `/v1/devices/${registered.id}/timeline`)).json.items.map(
      (entry: { type: string }) => entry.type,
    );
    expect(timeline).toEqual(["device.registered", "sim.attached", "bearer.switched", "device.reachability-changed", "sim.detached"]);
  });

  it("treats a redelivered event as a duplicate and a late one as changing nothing", async () => {
    const { tenant, post, device, auditCount } = await setup();
    const registered = (await tenant.call("POST", "/v1/devices", { imsi })).json;
    const detach = fact("sim.detached", {}, 10);
    const attach = fact("sim.attached", { bearer: "cellular", ipv4: "10.20.0.9" }, 5);
    await post([detach]);
    const audited = await auditCount();
    await post([detach, attach]);
    expect((await device(registered.id)).identity.sessions).toEqual({});
    // The redelivered detach adds nothing; the late attach changes no state, but the session it
    // reports existed: it is recorded once (issue 11), as sim.session-recorded.
    expect(await auditCount()).toBe(audited + 1);
    await post([detach, attach]);
    expect(await auditCount()).toBe(audited + 1);
  });

  it("quarantines a device whose IMEI changes under a locked binding, and never revives a revoked one", async () => {
    const { tenant, post, device } = await setup();
    const registered = (await tenant.call("POST", "/v1/devices", { imsi, imei: "490154203237518" })).json;
    await post([fact("device.equipment-changed", { imei: "356938035643809" }, 1)]);
    const quarantined = await device(registered.id);
    expect(quarantined.state).toBe("quarantined");
    expect(quarantined.identity.stateReason).toContain("IMEI changed");

    await post([
      fact("device.revoked", { reason: "SIM deleted by operator" }, 5),
      fact("sim.attached", { bearer: "cellular", ipv4: "10.20.0.10" }, 6),
      fact("device.reinstated", {}, 7),
    ]);
    const revoked = await device(registered.id);
    expect(revoked.state).toBe("revoked");
    expect(revoked.identity.sessions).toEqual({});
  });

  it("parks an event for an unknown device with its reason, and applies it when the device is registered", async () => {
    const { tenant, post, device } = await setup();
    const stray = fact("sim.attached", { bearer: "cellular", ipv4: "10.20.0.11" }, 1, { imsi: "208019999999999" });
    const accepted = await post<Schema<"IngestResult">>([stray]);
    expect(accepted.status).toBe(202);
    const parked = (await tenant.call("GET", "/v1/dead-letters")).json.items;
    expect(parked).toHaveLength(1);
    expect(parked[0]).toMatchObject({ id: accepted.json.accepted[0]!.id, reason: "no device in this tenant matches imsi:208019999999999" });

    // A manual replay while no device matches parks it again, with the same reason.
    expect((await tenant.call("POST", `/v1/dead-letters/${parked[0].id}/replay`)).status).toBe(202);
    await runtime.settled();
    expect((await tenant.call("GET", "/v1/dead-letters")).json.items).toMatchObject([{ id: parked[0].id, reason: parked[0].reason }]);

    // Registering the device is enough: the reconciler replays what was parked for it.
    const registered = (await tenant.call("POST", "/v1/devices", { imsi: "208019999999999" })).json;
    await runtime.settled();
    expect((await device(registered.id)).identity.sessions.cellular?.ipv4).toBe("10.20.0.11");
    expect((await tenant.call("GET", "/v1/dead-letters")).json.items).toEqual([]);
    expect((await tenant.call("POST", `/v1/dead-letters/${parked[0].id}/replay`)).status).toBe(404);
  });

  it("refuses forged and stale signatures with 401 and records nothing", async () => {
    const { tenant, source, post, credentials, auditCount } = await setup();
    await tenant.call("POST", "/v1/devices", { imsi });
    const body = [fact("device.revoked", {}, 1)];
    const before = await auditCount();
    const forged = await post<Schema<"Problem">>(
      body,
      standardWebhookHeaders(`whsec_${Buffer.from("not the secret at all").toString("base64")}`, JSON.stringify(body)),
    );
    expect(forged.status).toBe(401);
    expect(forged.json.type).toBe("urn:simroot:problem:ingest.unauthenticated");
    const stale = await post(
      body,
      standardWebhookHeaders(credentials.webhookSecret, JSON.stringify(body), "msg_1", Math.floor(Date.now() / 1000) - 600),
    );
    expect(stale.status).toBe(401);
    expect(await auditCount()).toBe(before);
    expect(runtime.bus.status().pending).toBe(0);
    expect(source.id).toMatch(/^src_/);
  });

  it("reports bad items per index, names the bad field when nothing is usable, and refuses oversize bodies", async () => {
    const { tenant, post } = await setup();
    await tenant.call("POST", "/v1/devices", { imsi });
    const mixed = await post<Schema<"IngestResult">>([
      fact("sim.detached", {}, 1),
      { ...fact("sim.attached", { bearer: "carrier-pigeon" }, 2) },
    ]);
    expect(mixed.status).toBe(202);
    expect(mixed.json.accepted).toHaveLength(1);
    expect(mixed.json.rejected[0]!.index).toBe(1);
    expect(mixed.json.rejected[0]!.errors[0]!.path).toContain("bearer");

    const bad = await post<Schema<"Problem">>([{ ...fact("sim.detached", {}, 1), occurredAt: "yesterday" }]);
    expect(bad.status).toBe(400);
    expect(bad.json.errors![0]!.path).toContain("occurredAt");

    const { source, credentials } = (await tenant.call("POST", "/v1/sources", { name: "big", format: "simroot" })).json;
    const huge = JSON.stringify([fact("sim.detached", { reason: "x".repeat(1024 * 1024) }, 1)]);
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: standardWebhookHeaders(credentials.webhookSecret, huge),
      body: huge,
    });
    expect(response.status).toBe(413);
  });

  it("refuses an unsigned request listing thousands of signatures over a large body in bounded time (review 78)", async () => {
    const { source } = await setup();
    const body = `[${" ".repeat(1024 * 1024 - 100)}]`;
    const started = performance.now();
    const response = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "webhook-id": "msg_flood",
        "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
        // 3,000 `v1,x` in 15 KB of header: an HMAC of the whole body each, twice (cached, then fresh credentials).
        "webhook-signature": Array(3000).fill("v1,x").join(" "),
      },
      body,
    });
    expect(response.status).toBe(401);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it("refuses a webhook-id longer than 256 characters with 401, recording nothing (review 80)", async () => {
    const { source, post, credentials, auditCount } = await setup();
    const body = [fact("sim.detached", {}, 1)];
    const text = JSON.stringify(body);
    expect((await post(body, standardWebhookHeaders(credentials.webhookSecret, text, `msg_${"a".repeat(252)}`))).status).toBe(202);
    const before = await auditCount();
    // Validly signed: 257 characters, and 4,096 (past DynamoDB's 2,048-byte partition key: a 500 before).
    for (const length of [257, 4096]) {
      const id = `msg_${"b".repeat(length - 4)}`;
      const response = await runtime.app.request(source.ingestPath, {
        method: "POST",
        headers: standardWebhookHeaders(credentials.webhookSecret, text, id),
        body: text,
      });
      const problem = (await response.json()) as Schema<"Problem">;
      expect([length, response.status, response.headers.get("content-type"), problem.type, problem.detail]).toEqual([
        length,
        401,
        "application/problem+json",
        "urn:simroot:problem:ingest.unauthenticated",
        // One answer for every refusal (review 83): the reason is logged, not told.
        "Missing or invalid credentials for this source",
      ]);
    }
    expect(await auditCount()).toBe(before);
    expect(runtime.bus.status().pending).toBe(0);
  });

  it("answers a batch whose rejected items carry many errors, and its retry, with one bounded answer (review 80)", async () => {
    const { source, credentials } = await setup();
    // One good item and 999 with a dozen wrong fields each: 172 bytes an item, 1 KB of errors in the answer. That answer
    // (1 MB) did not fit the 400 KB item keeping it for the webhook-id: a 500 after the event was published, on every retry.
    const text = JSON.stringify([fact("sim.detached", {}, 1), ...Array(999).fill(twelveWrongFields)]);
    const headers = standardWebhookHeaders(credentials.webhookSecret, text, "msg_many_errors");
    const publisher = runtime.ports.publisher;
    const publish = publisher.publish;
    let published = 0;
    publisher.publish = async (events, ...rest) => {
      published += events.filter((event) => event.actor === `source:${source.id}`).length;
      return publish.call(publisher, events, ...rest);
    };
    const answers: { status: number; text: string }[] = [];
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const response = await runtime.app.request(source.ingestPath, { method: "POST", headers, body: text });
        answers.push({ status: response.status, text: await response.text() });
      }
    } finally {
      publisher.publish = publish;
    }
    expect(
      answers.map((answer) => answer.status),
      answers[0]!.text.slice(0, 300),
    ).toEqual([202, 202]);
    expect(answers[1]!.text).toBe(answers[0]!.text);
    expect(published).toBe(1);
    const result = JSON.parse(answers[0]!.text) as Schema<"IngestResult">;
    expect(Buffer.byteLength(answers[0]!.text)).toBeLessThanOrEqual(maxAnswerBytes);
    expect(result.accepted.map((item) => item.index)).toEqual([0]);
    // Every rejected item is named; its errors are listed while they fit, the rest counted.
    expect(result.rejected.map((item) => item.index)).toEqual(Array.from({ length: 999 }, (_, n) => n + 1));
    expect(result.rejected[0]!.errors.length).toBe(10);
    expect(result.rejected[0]!.unlistedErrors).toBe(2);
    expect(result.rejected.at(-1)).toEqual({ index: 999, errors: [], unlistedErrors: 12 });
    const listed = result.rejected.reduce((count, item) => count + item.errors.length, 0);
    const unlisted = result.rejected.reduce((count, item) => count + (item.unlistedErrors ?? 0), 0);
    expect(listed + unlisted).toBe(999 * 12);
  });

  it("refuses a batch of nothing but wrong items with a bounded problem, counting the errors it does not list", async () => {
    const { source, credentials } = await setup();
    // 1,000 items with a dozen wrong fields each: the 400 listed all 12,000 errors, over 1 MB of problem+json.
    const text = JSON.stringify(Array(1000).fill(twelveWrongFields));
    const headers = standardWebhookHeaders(credentials.webhookSecret, text, "msg_all_wrong");
    const response = await runtime.app.request(source.ingestPath, { method: "POST", headers, body: text });
    const answer = await response.text();
    expect([response.status, response.headers.get("content-type")]).toEqual([400, "application/problem+json"]);
    expect(Buffer.byteLength(answer)).toBeLessThanOrEqual(maxAnswerBytes);
    const problem = JSON.parse(answer) as { type: string; errors: { path: string; message: string }[] };
    expect(problem.type).toBe("urn:simroot:problem:ingest.invalid_body");
    // The first item's first errors are listed by path, and the last issue counts what is not.
    expect(problem.errors[0]!.path).toMatch(/^0\./);
    const listed = problem.errors.length - 1;
    expect(problem.errors.at(-1)).toEqual({ path: "", message: `${1000 * 12 - listed} more errors not listed` });
    expect(runtime.bus.status().pending).toBe(0);
  });

  it("answers 1,000 facts dated far ahead within the bound, saying when each was stated (review 80)", async () => {
    const { source, credentials } = await setup();
    // The longest stated time accepted (review 83: nanoseconds and an offset), echoed as it was stated.
    const stated = "2099-01-01T00:00:00.000000000+00:00";
    // Eight devices' facts: a request reports at most 250 of one device (review 138).
    const body = Array.from({ length: 1000 }, (_, n) => ({
      ...fact("sim.detached", {}, 1, { imsi: `2080100000000${String(n % 8).padStart(2, "0")}` }),
      dedupeKey: `far-${n}`,
      occurredAt: stated,
    }));
    const text = JSON.stringify(body);
    const headers = standardWebhookHeaders(credentials.webhookSecret, text, "msg_far_ahead");
    const first = await runtime.app.request(source.ingestPath, { method: "POST", headers, body: text });
    const answer = await first.text();
    expect(first.status, answer.slice(0, 300)).toBe(202);
    expect(Buffer.byteLength(answer)).toBeLessThanOrEqual(maxAnswerBytes);
    const result = JSON.parse(answer) as Schema<"IngestResult">;
    expect(result.accepted).toHaveLength(1000);
    expect(new Set(result.accepted.map((item) => item.clampedFrom))).toEqual(new Set([stated]));
    const retry = await runtime.app.request(source.ingestPath, { method: "POST", headers, body: text });
    expect([retry.status, await retry.text()]).toEqual([202, answer]);
    await runtime.settled();
  });

  it("refuses a fact whose occurredAt is longer than 35 characters as an item error, applying nothing of it (review 83)", async () => {
    const { tenant, post, device, auditCount } = await setup();
    const registered = (await tenant.call("POST", "/v1/devices", { imsi })).json;
    const before = await auditCount();
    // RFC 3339 bounds no fraction of a second: 60,000 digits of one went into the fact, its audit record and the feed.
    const long = { ...fact("device.revoked", { reason: "stolen" }, 2), occurredAt: `2026-11-22T06:02:00.${"1".repeat(60_000)}Z` };
    const result = await post<Schema<"IngestResult">>([fact("sim.detached", {}, 1), long]);
    expect(result.status).toBe(202);
    expect(result.json.accepted.map((item) => [item.index, item.type])).toEqual([[0, "sim.detached"]]);
    expect(result.json.rejected).toEqual([
      { index: 1, errors: [{ path: "occurredAt", message: "must be at most 35 characters (a fraction of a second to nanoseconds)" }] },
    ]);
    expect((await device(registered.id)).state).toBe("active");
    const audit = (await tenant.call("GET", "/v1/audit?limit=1000")).json.items as { action: string }[];
    expect(audit.slice(0, audit.length - before).map((record) => record.action)).not.toContain("device.revoked");
  });

  it("publishes the catalogue as AsyncAPI 3", async () => {
    const response = await runtime.app.request("/asyncapi.json");
    const document = (await response.json()) as { asyncapi: string; channels: { applied: { messages: Record<string, unknown> } } };
    expect(document.asyncapi).toBe("3.0.0");
    expect(Object.keys(document.channels.applied.messages)).toEqual(
      expect.arrayContaining(["simAttachedApplied", "profileEnabledApplied", "deviceRevokedApplied", "bearerSwitchedApplied"]),
    );
  });
});
