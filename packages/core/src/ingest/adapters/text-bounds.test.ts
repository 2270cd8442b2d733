/**
 * Text a sender fills is bounded wherever a fact keeps it (review 83): a stated time at 35 characters, in every format,
 * refused as an item error naming the sender's field; a device id at 64; any other text of a fact at 1,000. Unbounded,
 * one `occurredAt` of 60,000 digits of a second was accepted into the fact, its audit record and the feed.
 */
import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { AdapterItem, IngestRequest } from "../adapter.ts";
import { camaraAdapter } from "./camara.ts";
import { datastreamerAdapter } from "./datastreamer.ts";
import { eimAdapter } from "./eim.ts";
import { checkedItem } from "./items.ts";
import { nefAdapter } from "./nef.ts";
import { simrootAdapter } from "./simroot.ts";
import { supersimAdapter } from "./supersim.ts";
import { ingestRequest } from "./test-support.ts";
import type { NormalizedEvent } from "../../catalogue/catalogue.ts";

const iccid = "89883070000044236204";
const imsi = "732123206640719";
const eid = "89049032123451234512345678901235";
/** RFC 3339 with nanoseconds and an offset: the longest time a real sender states (Go's RFC3339Nano, java.time). */
const nanoseconds = "2026-03-01T11:59:30.123456789+01:00";
const tooLong = {
  "a digit more": "2026-03-01T11:59:30.1234567891+01:00",
  "60,000 digits of a second": `2026-03-01T11:59:30.${"1".repeat(60_000)}Z`,
};

const json = (body: unknown, headers: Record<string, string> = {}) =>
  ingestRequest(body, { "content-type": "application/json", ...headers });

/** Each format's body stating `time` for one event, and the sender's field that carries it. */
const formats: Record<string, { parse: (time: string) => readonly AdapterItem[]; field: string }> = {
  simroot: {
    field: "occurredAt",
    parse: (time) =>
      simrootAdapter.parse(
        json([{ type: "sim.detached", dedupeKey: "k1", occurredAt: time, device: { imsi }, sourceType: "x", data: {} }]),
      ),
  },
  camara: {
    field: "time",
    parse: (time) =>
      camaraAdapter.parse(
        json({
          specversion: "1.0",
          id: "123654",
          source: "https://camara.example",
          type: "org.camaraproject.device-roaming-status-subscriptions.v0.roaming-off",
          time,
          data: { device: { phoneNumber: "+34600123456" } },
        }),
      ),
  },
  nef: {
    field: "eventTime",
    parse: (time) =>
      nefAdapter.parse(
        json({
          subscription: "https://nef.example/subscriptions/1",
          monitoringEventReports: [{ monitoringType: "LOSS_OF_CONNECTIVITY", externalId: "d@iot.example", eventTime: time }],
        }),
      ),
  },
  datastreamer: {
    field: "timestamp",
    parse: (time) =>
      datastreamerAdapter.parse(json([{ id: 1, timestamp: time, event_type: { id: 9, description: "SIM suspension" }, sim: { iccid } }])),
  },
  supersim: {
    field: "data.timestamp",
    parse: (time) =>
      supersimAdapter.parse(
        json([
          {
            specversion: "1.0",
            id: "EZ1",
            source: "/v1/Sims/HS1",
            type: "com.twilio.iot.supersim.connection.attachment.accepted",
            time,
            data: { sim_iccid: iccid, timestamp: time },
          },
        ]),
      ),
  },
  "eim (eIM JSON)": {
    field: "timestamp",
    parse: (time) =>
      eimAdapter.parse(json({ eid, notifications: [{ seqNumber: 1, operation: "enable", iccid, timestamp: time }] }), {
        bearerToken: "t",
      }),
  },
  "eim (ES2+)": {
    field: "timestamp",
    parse: (time) =>
      eimAdapter.parse(
        json({
          header: { functionRequesterIdentifier: "smdp.example", functionCallIdentifier: "TX-1" },
          eid,
          iccid,
          timestamp: time,
          notificationPointId: 4,
          notificationPointStatus: { status: "Executed-Success" },
        }),
        { bearerToken: "t" },
      ),
  },
};

describe("a stated time is at most 35 characters, in every format", () => {
  it.each(Object.entries(formats))("%s: one with nanoseconds and an offset is accepted", (_, format) => {
    const [item] = format.parse(nanoseconds);
    expect(item?.ok, JSON.stringify(item)).toBe(true);
    if (item?.ok) expect(item.events.map((event) => Date.parse(event.occurredAt))).toEqual([Date.parse(nanoseconds)]);
  });

  for (const [name, time] of Object.entries(tooLong)) {
    it.each(Object.entries(formats))(`%s: one of ${name} refuses its item, naming the field`, (_, format) => {
      const items = format.parse(time);
      expect(items).toHaveLength(1);
      const [item] = items;
      expect(item?.ok, JSON.stringify(item).slice(0, 300)).toBe(false);
      if (!item || item.ok) return;
      expect(item.issues.map((issue) => issue.path)).toContain(format.field);
      expect(JSON.stringify(item.issues).length).toBeLessThan(1_000);
    });
  }
});

describe("the other text of a fact is bounded", () => {
  const unhandled = (device: Record<string, string>, summary: Record<string, unknown>) =>
    ({
      type: "source.unhandled",
      dedupeKey: "k1",
      occurredAt: "2026-03-01T12:00:00.000Z",
      device,
      sourceType: "vendor.event",
      data: { sourceType: "vendor.event", summary },
    }) as NormalizedEvent;

  it("accepts a device id of 64 characters and summary text of 1,000", () => {
    const event = unhandled({ deviceId: `dev_${"0".repeat(60)}` }, { [`k${"e".repeat(999)}`]: "x".repeat(1_000) });
    expect(simrootAdapter.parse(json([event]))).toEqual([{ index: 0, ok: true, events: [event] }]);
  });

  it.each([
    ["a device id of 65 characters", { deviceId: `dev_${"0".repeat(61)}` }, {}, "device.deviceId"],
    ["a device id of 60,000 characters", { deviceId: "d".repeat(60_000) }, {}, "device.deviceId"],
    ["summary text of 1,001 characters", { imsi }, { cause: "x".repeat(1_001) }, "data.summary.cause"],
    ["nested summary text of 60,000 characters", { imsi }, { error: { message: "x".repeat(60_000) } }, "data.summary.error.message"],
    ["a summary key of 1,001 characters", { imsi }, { [`k${"e".repeat(1_000)}`]: 1 }, "data.summary"],
  ])("refuses %s, naming where", (_, device, summary, path) => {
    const [item] = simrootAdapter.parse(json([unhandled(device, summary)]));
    expect(item?.ok).toBe(false);
    if (!item || item.ok) return;
    expect(item.issues.map((issue) => issue.path)).toEqual([path]);
    expect(checkedItem(0, [unhandled(device, summary)]).ok).toBe(false);
  });

  it("refuses an operator's long text kept in a summary (a Super SIM error message), as an item error", () => {
    const body = JSON.stringify([
      {
        specversion: "1.0",
        id: "EZ2",
        source: "/v1/Sims/HS1",
        type: "com.twilio.iot.supersim.connection.attachment.rejected",
        time: "2026-03-01T11:00:00Z",
        data: { sim_iccid: iccid, timestamp: "2026-03-01T11:00:00Z", error: { code: 1, message: "x".repeat(60_000) } },
      },
    ]);
    const [item] = supersimAdapter.parse(signedTwilio(body));
    expect(item).toEqual({ index: 0, ok: false, issues: [expect.objectContaining({ path: "data.summary.error.message" })] });
  });
});

function signedTwilio(body: string): IngestRequest {
  const url = `https://ingest.simroot.example/v1/ingest/src_1?bodySHA256=${createHash("sha256").update(body).digest("hex")}`;
  const signature = createHmac("sha1", "token").update(url).digest("base64");
  return ingestRequest(body, { "content-type": "application/json", "x-twilio-signature": signature }, url);
}
