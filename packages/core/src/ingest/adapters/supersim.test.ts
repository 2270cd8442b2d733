/**
 * Events follow the Twilio "Event types > Super SIM" v2 schema (event_sid, event_type,
 * account_sid, sim_sid, fleet_sid, sim_iccid, sim_unique_name, timestamp, network, imsi, imei,
 * ip_address, apn, rat_type, location, error, data_session_*), wrapped in CloudEvents as an
 * Event Streams webhook sink posts them (a JSON array). The signature vector is twilio-node's
 * own webhooks test (token 12345, URL with bodySHA256, signature a9nBmqA0ju/hNViExpshrM61xv4=).
 */
import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { normalizedEventSchema } from "../../catalogue/catalogue.ts";
import type { IngestRequest } from "../adapter.ts";
import { supersimAdapter } from "./supersim.ts";
import { authFailure, ingestRequest, invalidBodyFailure, now, onlyEvent } from "./test-support.ts";
const authToken = "f0e1d2c3b4a5968778695a4b3c2d1e0f";
const sinkUrl = "https://ingest.simroot.example/v1/sources/src_supersim/events";
const source = "/v1/Sims/HS7319340e9486db1faba1eb2790e6ef03";
const prefix = "com.twilio.iot.supersim.connection";

const attNetwork = { mcc: "310", mnc: "410", sid: "HWb90542dc0d8b4276a694d0fe5c794168", iso_country: "US", friendly_name: "AT&T" };

function connectionEvent(event: string, id: string, data: Record<string, unknown> = {}) {
  const timestamp = (data["timestamp"] as string | undefined) ?? "2026-03-01T09:05:44Z";
  return {
    specversion: "1.0",
    type: `${prefix}.${event}`,
    source,
    id,
    dataschema: "https://events-schemas.twilio.com/SuperSim.ConnectionEvent/2",
    datacontenttype: "application/json",
    time: timestamp,
    data: {
      event_sid: id,
      event_type: `${prefix}.${event}`,
      account_sid: "AC00000000000000000000000000000001",
      sim_sid: "HS7319340e9486db1faba1eb2790e6ef03",
      fleet_sid: "HF00000000000000000000000000000001",
      sim_iccid: "89883070000044236204",
      sim_unique_name: "barra-gps-12",
      timestamp,
      network: attNetwork,
      imsi: "732123206640719",
      imei: "353785726123176",
      location: { cell_id: "40026625", lac: "602", lat: 26.2721, lon: -81.809 },
      ...data,
    },
  };
}

const sessionFields = {
  apn: "super",
  ip_address: "100.65.109.189",
  rat_type: "4G LTE",
  data_session_sid: "PI00000000000000000000000000000001",
};

/** Signs like Twilio: bodySHA256 appended to the URL, then base64(HMAC-SHA1(token, URL)). */
function signed(body: string, options: { token?: string; url?: string } = {}): IngestRequest {
  const bodyHash = createHash("sha256").update(body).digest("hex");
  const url = `${options.url ?? sinkUrl}?bodySHA256=${bodyHash}`;
  const signature = createHmac("sha1", options.token ?? authToken)
    .update(url)
    .digest("base64");
  return ingestRequest(body, { "content-type": "application/json", "x-twilio-signature": signature }, url);
}

const parse = (events: unknown) => supersimAdapter.parse(signed(JSON.stringify(events)));

describe("supersim authentication (X-Twilio-Signature with bodySHA256)", () => {
  const body = JSON.stringify([connectionEvent("attachment.accepted", "EZ00000000000000000000000000000001")]);

  it("verifies twilio-node's published JSON-body vector", () => {
    const request: IngestRequest = {
      method: "POST",
      url: "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620",
      headers: { "x-twilio-signature": "a9nBmqA0ju/hNViExpshrM61xv4=" },
      body: '{"property": "value", "boolean": true}',
      now,
    };
    expect(() => supersimAdapter.authenticate(request, { twilioAuthToken: "12345" })).not.toThrow();
  });

  it("accepts a request signed with the account's auth token", () => {
    expect(() => supersimAdapter.authenticate(signed(body), { twilioAuthToken: authToken })).not.toThrow();
  });

  it("accepts a signature computed over the URL with the explicit default port", () => {
    const request = signed(body, { url: "https://ingest.simroot.example:443/v1/sources/src_supersim/events" });
    expect(() =>
      supersimAdapter.authenticate({ ...request, url: request.url.replace(":443", "") }, { twilioAuthToken: authToken }),
    ).not.toThrow();
  });

  const refusals: [string, (request: IngestRequest) => IngestRequest, string | undefined][] = [
    ["a signature made with another token", () => signed(body, { token: "another-token" }), authToken],
    [
      "a body changed after signing",
      (request) => ({ ...request, body: body.replace("attachment.accepted", "attachment.rejected") }),
      authToken,
    ],
    ["a missing signature header", (request) => ({ ...request, headers: { "content-type": "application/json" } }), authToken],
    ["a URL without bodySHA256", (request) => ({ ...request, url: sinkUrl }), authToken],
    ["a different URL", (request) => ({ ...request, url: request.url.replace("src_supersim", "src_other") }), authToken],
    ["a source without an auth token", (request) => request, undefined],
  ];

  it.each(refusals)("refuses %s", (_, tamper, twilioAuthToken) => {
    authFailure(() => supersimAdapter.authenticate(tamper(signed(body)), twilioAuthToken === undefined ? {} : { twilioAuthToken }));
  });
});

describe("supersim mapping", () => {
  const device = { iccid: "89883070000044236204", imsi: "732123206640719", imei: "353785726123176" };

  it("maps attachment.accepted to reachability: the SIM is registered", () => {
    expect(onlyEvent(parse([connectionEvent("attachment.accepted", "EZ01")]))).toEqual({
      type: "device.reachability-changed",
      dedupeKey: `${source}|EZ01`,
      occurredAt: "2026-03-01T09:05:44Z",
      device,
      sourceType: `${prefix}.attachment.accepted`,
      data: { reachable: true },
    });
  });

  it.each(["attachment.rejected", "attachment.failed"])("records %s as source.unhandled with the error", (name) => {
    const error = { code: 34102, message: "Network not allowed by Network Access Profile" };
    expect(onlyEvent(parse([connectionEvent(name, "EZ02", { error })]))).toMatchObject({
      type: "source.unhandled",
      data: { sourceType: `${prefix}.${name}`, summary: { error, network: { mcc: "310", mnc: "410", name: "AT&T" } } },
    });
  });

  it("maps data-session.started to sim.attached with RAT, PLMN, APN and IP", () => {
    expect(onlyEvent(parse([connectionEvent("data-session.started", "EZ03", sessionFields)]))).toEqual({
      type: "sim.attached",
      dedupeKey: `${source}|EZ03`,
      occurredAt: "2026-03-01T09:05:44Z",
      device: { ...device, ip: "100.65.109.189" },
      sourceType: `${prefix}.data-session.started`,
      data: {
        bearer: "cellular",
        rat: "EUTRA",
        plmn: { mcc: "310", mnc: "410" },
        apn: "super",
        ipv4: "100.65.109.189",
        imei: "353785726123176",
      },
    });
  });

  it("keeps an IPv6 session's address, in one spelling (review 58: it was dropped)", () => {
    const event = onlyEvent(parse([connectionEvent("data-session.started", "EZ05", { ...sessionFields, ip_address: "2001:DB8:5:0::5" })]));
    expect(event.data).toMatchObject({ ipv6: "2001:db8:5::5" });
    expect(event.data).not.toHaveProperty("ipv4");
  });

  it.each([
    ["LTE Cat-M", "LTE-M"],
    ["NB-IoT", "NBIOT"],
    ["3G UMTS", "UTRA"],
    ["2G GSM", "GERA"],
    ["5G NR", "NR"],
  ])("reads rat_type %s as %s", (ratType, rat) => {
    expect(onlyEvent(parse([connectionEvent("data-session.started", "EZ04", { ...sessionFields, rat_type: ratType })])).data).toMatchObject(
      { rat, bearer: "cellular" },
    );
  });

  it("maps data-session.updated reporting RAT and network to bearer.switched", () => {
    const event = onlyEvent(
      parse([connectionEvent("data-session.updated", "EZ05", { ...sessionFields, rat_type: "LTE Cat-M", data_total: 4096 })]),
    );
    expect(event).toMatchObject({
      type: "bearer.switched",
      data: { bearer: "cellular", rat: "LTE-M", plmn: { mcc: "310", mnc: "410" }, apn: "super", ipv4: "100.65.109.189" },
    });
  });

  it("records a data-session.updated without RAT or network as source.unhandled", () => {
    const event = onlyEvent(parse([connectionEvent("data-session.updated", "EZ06", { ...sessionFields, rat_type: null, network: null })]));
    expect(event).toMatchObject({ type: "source.unhandled", data: { sourceType: `${prefix}.data-session.updated` } });
  });

  it("maps data-session.ended to sim.detached", () => {
    const ended = connectionEvent("data-session.ended", "EZ07", {
      ...sessionFields,
      data_session_end_time: "2026-03-01T09:25:44Z",
      timestamp: "2026-03-01T09:25:44Z",
    });
    expect(onlyEvent(parse([ended]))).toMatchObject({
      type: "sim.detached",
      occurredAt: "2026-03-01T09:25:44Z",
      data: { bearer: "cellular" },
    });
  });

  it("maps data-session.failed to sim.detached with the error as reason", () => {
    const failed = connectionEvent("data-session.failed", "EZ08", {
      ...sessionFields,
      ip_address: null,
      error: { code: 34201, message: "APN not allowed" },
    });
    expect(onlyEvent(parse([failed]))).toMatchObject({ type: "sim.detached", data: { bearer: "cellular", reason: "APN not allowed" } });
  });

  it("matches the KORE event type namespace on its suffix", () => {
    const kore = {
      ...connectionEvent("data-session.started", "EZ09", sessionFields),
      type: "com.korewireless.supersim.connection.data-session.started",
    };
    expect(onlyEvent(parse([kore])).type).toBe("sim.attached");
  });

  it("drops an IMEI that is not a valid equipment identity but keeps the other identifiers", () => {
    expect(onlyEvent(parse([connectionEvent("attachment.accepted", "EZ10", { imei: null })])).device).toEqual({
      iccid: device.iccid,
      imsi: device.imsi,
    });
  });
});

describe("supersim batches", () => {
  it("reports each bad CloudEvent as its own refused item", () => {
    const withoutId = { ...connectionEvent("attachment.accepted", "EZ11"), id: undefined };
    const badTime = connectionEvent("attachment.accepted", "EZ12", { timestamp: "last tuesday" });
    const items = parse([
      connectionEvent("data-session.started", "EZ13", sessionFields),
      withoutId,
      badTime,
      connectionEvent("data-session.ended", "EZ14"),
    ]);
    expect(items.map((item) => [item.index, item.ok])).toEqual([
      [0, true],
      [1, false],
      [2, false],
      [3, true],
    ]);
    expect(items[1]).toMatchObject({ ok: false, issues: [{ path: "id" }] });
    expect(items[2]).toEqual({
      index: 2,
      ok: false,
      issues: [{ path: "data.timestamp", message: "must be an ISO 8601 date-time of at most 35 characters (or `time` must be)" }],
    });
    for (const item of items) if (item.ok) for (const event of item.events) normalizedEventSchema.parse(event);
  });

  it.each([
    ["text", "not json at all"],
    ["a string", JSON.stringify("events")],
    ["a number", "7"],
  ])("throws ingest.invalid_body for %s", (_, body) => {
    invalidBodyFailure(() => supersimAdapter.parse(signed(body)));
  });
});
