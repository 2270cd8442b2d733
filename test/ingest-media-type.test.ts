/**
 * Each format takes its bodies as the media types its senders label them with (review 83). A JSON body labelled
 * `text/plain`, form data or nothing at all (what a browser sends cross-origin without a preflight) was parsed as JSON:
 * it is refused with 415 and `Accept-Post`, after authentication and before the body is read.
 */
import { createHash, createHmac } from "node:crypto";
import type { Schema } from "@simroot/sdk";
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from "vitest";
import { rateLimitFields } from "./support/rate-limit-headers.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
let published: MockInstance<TestRuntime["bus"]["publish"]>;
beforeAll(async () => {
  runtime = await startTestRuntime();
  published = vi.spyOn(runtime.bus, "publish");
});
afterAll(() => runtime.stop());

const iccid = "89883070000044236204";
const eid = "89049032123451234512345678901235";
const twilioAuthToken = "f0e1d2c3b4a5968778695a4b3c2d1e0f";
const cloudEvents = ["application/json", "application/cloudevents+json", "application/cloudevents-batch+json"];

/** One event each format's senders post, and the media types it is taken as. */
const formats = {
  simroot: {
    accepts: ["application/json"],
    body: () => [
      {
        type: "sim.detached",
        dedupeKey: `k-${Math.random()}`,
        occurredAt: "2026-03-01T12:00:00Z",
        device: { iccid },
        sourceType: "x",
        data: {},
      },
    ],
  },
  camara: {
    accepts: cloudEvents,
    body: () => ({
      specversion: "1.0",
      id: `c-${Math.random()}`,
      source: "https://camara.example",
      type: "org.camaraproject.device-roaming-status-subscriptions.v0.roaming-off",
      time: "2026-03-01T12:00:00Z",
      data: { device: { phoneNumber: "+34600123456" } },
    }),
  },
  nef: {
    accepts: ["application/json"],
    body: () => ({
      subscription: "https://nef.example/subscriptions/1",
      monitoringEventReports: [
        { monitoringType: "LOSS_OF_CONNECTIVITY", externalId: "d@iot.example", eventTime: new Date().toISOString() },
      ],
    }),
  },
  datastreamer: {
    accepts: ["application/json"],
    body: () => [
      {
        id: Math.floor(Math.random() * 1e9),
        timestamp: "2026-03-01T12:00:00Z",
        event_type: { id: 9, description: "SIM suspension" },
        sim: { iccid },
      },
    ],
  },
  supersim: {
    accepts: cloudEvents,
    body: () => [
      {
        specversion: "1.0",
        id: `EZ${Math.random()}`,
        source: "/v1/Sims/HS1",
        type: "com.twilio.iot.supersim.connection.attachment.accepted",
        // Now: a Super SIM event over 20 hours old is refused (review 89).
        time: new Date().toISOString(),
        data: { sim_iccid: iccid, timestamp: new Date().toISOString() },
      },
    ],
  },
  eim: {
    accepts: ["application/json"],
    body: () => ({ eid, notifications: [{ seqNumber: Math.floor(Math.random() * 1e9), operation: "enable", iccid }] }),
  },
} as const;
type Format = keyof typeof formats;

async function sourceOf(format: Format) {
  const tenant = await tenantClient(runtime, `media-${format}`);
  const created = await tenant.call("POST", "/v1/sources", {
    name: format,
    format,
    ...(format === "supersim" ? { credentials: { twilioAuthToken } } : {}),
  });
  expect(created.status, created.text).toBe(201);
  const { source, credentials } = created.json as { source: { ingestPath: string }; credentials: Record<string, string> };
  /** The request as the format's sender signs it, labelled `contentType` (none when undefined). */
  return (body: string, contentType: string | undefined) => {
    const bodyHash = createHash("sha256").update(body).digest("hex");
    const path = format === "supersim" ? `${source.ingestPath}?bodySHA256=${bodyHash}` : source.ingestPath;
    const bearer = () => ({ authorization: `Bearer ${credentials["bearerToken"]}` });
    const auth: Record<Format, () => Record<string, string>> = {
      simroot: () => standardWebhookHeaders(credentials["webhookSecret"]!, body),
      camara: bearer,
      nef: bearer,
      eim: bearer,
      datastreamer: () => ({
        authorization: `Basic ${Buffer.from(`${credentials["basicUser"]}:${credentials["basicPassword"]}`).toString("base64")}`,
      }),
      supersim: () => ({
        "x-twilio-signature": createHmac("sha1", twilioAuthToken).update(`http://localhost${path}`).digest("base64"),
      }),
    };
    const { "content-type": _, ...signed } = auth[format]();
    const headers = contentType === undefined ? signed : { ...signed, "content-type": contentType };
    // As bytes: a string body would be labelled `text/plain;charset=UTF-8` when the request names no type.
    return runtime.app.request(path, { method: "POST", headers, body: new TextEncoder().encode(body) });
  };
}

/** What a browser posts cross-origin without a preflight (the CORS-safelisted types), and a body labelled nothing. */
const refused = [
  "text/plain",
  "text/plain;charset=UTF-8",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  undefined,
];

describe("the media types of each format's webhooks", () => {
  it.each(Object.keys(formats) as Format[])("%s: its senders' types are taken", async (format) => {
    const post = await sourceOf(format);
    for (const type of [...formats[format].accepts, `${formats[format].accepts[0]}; charset=utf-8`]) {
      const response = await post(JSON.stringify(formats[format].body()), type);
      const answer = await response.text();
      expect([type, response.status], answer.slice(0, 300)).toEqual([type, 202]);
      expect((JSON.parse(answer) as Schema<"IngestResult">).rejected).toEqual([]);
    }
    await runtime.settled();
  });

  it.each(Object.keys(formats) as Format[])(
    "%s: JSON labelled anything else is refused with 415 and Accept-Post, publishing nothing",
    async (format) => {
      const post = await sourceOf(format);
      await runtime.settled();
      published.mockClear();
      for (const type of refused) {
        const response = await post(JSON.stringify(formats[format].body()), type);
        const problem = (await response.json()) as Schema<"Problem">;
        expect([type, response.status, response.headers.get("content-type")]).toEqual([type, 415, "application/problem+json"]);
        expect(response.headers.get("accept-post")).toBe(formats[format].accepts.join(", "));
        // Refused once authenticated and counted: it says what is left of the source's limit, as every counted answer does.
        expect(rateLimitFields(response.headers).left.default).toEqual({ r: expect.any(Number), t: expect.any(Number) });
        expect(problem.type).toBe("urn:simroot:problem:ingest.unsupported_media_type");
        for (const accepted of formats[format].accepts) expect(problem.detail).toContain(accepted);
      }
      expect(published).not.toHaveBeenCalled();
    },
  );
});
