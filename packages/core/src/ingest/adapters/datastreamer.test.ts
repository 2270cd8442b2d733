/**
 * Records are the emnify "Event types" examples (docs.emnify.com/system-events/event-types:
 * Update location, Update GPRS location, Create PDP Context accepted and rejected, Purge
 * location, Purge GPRS location) and the 1NCE "Event Records" examples (SIM suspension, SIM
 * activation, Delete PDP Context, quota events), with the placeholders (`<iccid>`, `<imsi>`, ...)
 * filled with well-formed values.
 */
import { describe, expect, it } from "vitest";
import { normalizedEventSchema } from "../../catalogue/catalogue.ts";
import type { IngestRequest, SourceCredentials } from "../adapter.ts";
import { datastreamerAdapter, imeiOf } from "./datastreamer.ts";
import { authFailure, ingestRequest, invalidBodyFailure, onlyEvent } from "./test-support.ts";

const organisation = { id: 12033, name: "Test Org" };
const severityInfo = { id: 0, description: "Info" };
const network = { id: 0, description: "Network" };
const api = { id: 2, description: "API" };
const sim = { iccid: "8988303000005733850", id: 3577707, production_date: "2020-12-23T13:02:11.000Z" };
const imsi = { id: 10770316, import_date: "2020-12-23T13:02:11.000Z", imsi: "295090004145444" };
const endpoint = { id: 11089066, imei: "8693700220003770", ip_address: "100.102.41.209", name: "Test Sim 2", tags: null };
const vodafoneGermany = {
  id: 3,
  name: "Vodafone",
  country: { id: 74, name: "Germany", country_code: "49", mcc: "262", iso_code: "de" },
  tapcode: [{ id: 2, tapcode: "DEUD2" }],
  mnc: [{ id: 3, mnc: "02" }],
};

const updateLocation = {
  id: 201370709,
  alert: false,
  description: "New location received from VLR for IMSI='901430111111111', now attached to VLR='491720000095'.",
  timestamp: "2017-10-26T07:28:00.000+0000",
  event_type: { id: 1, description: "Update location" },
  event_source: network,
  event_severity: severityInfo,
  organisation: { id: 839921, name: "Demo Company" },
  endpoint: { id: 274887, name: "GPS Tracker", ip_address: "100.96.234.249", tags: null, imei: "8677300511111142" },
  imsi: { id: 105611, imsi: "901430111111111", import_date: "2016-12-27T10:09:23.000+0000" },
  sim: { id: 839999, iccid: "8988303001234567890", production_date: "2016-12-27T10:09:23.000+0000" },
  detail: vodafoneGermany,
};

const updateGprsLocation = {
  timestamp: "2021-10-24T12:44:09.901Z",
  alert: false,
  description: "New location received from SGSN for IMSI='295090004444444', now attached to SGSN='324750004071717', IP='213.181.60.148'.",
  id: 133107715407872,
  event_type: { id: 2, description: "Update GPRS location" },
  event_source: network,
  event_severity: severityInfo,
  organisation,
  endpoint,
  sim: { ...sim, iccid: "8988303000000033850" },
  imsi: { ...imsi, imsi: "262090004444444" },
  detail: vodafoneGermany,
};

const createPdpContext = {
  timestamp: "2021-10-27T08:38:02.000Z",
  alert: false,
  description: "New PDP Context successfully activated with SGSN CP=213.181.61.176, DP=213.181.61.176.",
  id: 137112624332866,
  event_type: { id: 3, description: "Create PDP Context" },
  event_source: network,
  event_severity: severityInfo,
  organisation,
  endpoint,
  sim,
  imsi,
  detail: {
    country: { country_code: "49", mcc: "262", name: "Germany", iso_code: "de", id: 74 },
    name: "Vodafone",
    pdp_context: {
      tariff_profile_id: "407878",
      tx_teid_control_plane: 298053053,
      breakout_ip: "195.58.216.216",
      tariff_id: "555",
      rac: null,
      ratezone_id: "3303",
      ci: 5532,
      imeisv: "8693700220003771",
      lac: 644,
      sac: null,
      gtp_version: 1,
      rat_type: 2,
      mcc: "262",
      tx_teid_data_plane: 299083083,
      ue_ip_address: "100.112.45.209",
      ggsn_data_plane_ip_address: "185.57.211.191",
      tunnel_created: "2021-10-27T08:38:02",
      pdp_context_id: 51755555,
      sgsn_control_plane_ip_address: "215.181.81.176",
      nsapi: 5,
      region: "eu-west-1",
      apn: "em",
      mnc: "02",
      sgsn_data_plane_ip_address: "213.181.61.176",
      operator_id: "3",
      imsi: "295090004145444",
      rx_teid: 51755444,
    },
    id: 3,
  },
};

const createPdpContextRejected = {
  timestamp: "2021-10-27T08:55:59.000Z",
  alert: true,
  description: "PDP Context Request rejected, because endpoint has no quota.",
  id: 1371111119611,
  event_type: { id: 3, description: "Create PDP Context" },
  event_source: { id: 1, description: "Policy Control" },
  event_severity: { id: 1, description: "Warn" },
  organisation: { id: 133, name: "Test Org" },
  endpoint: { id: 11096, imei: "8693700333333770", ip_address: "100.100.40.200", name: "Test Sim 2", tags: null },
  sim: { iccid: "8955505000005555550", id: 3577707, production_date: "2020-12-23T13:02:11.000Z" },
  imsi: { id: 10770377, import_date: "2020-12-23T13:02:11.000Z", imsi: "295090005555555" },
};

const deletePdpContext = {
  imsi: { imsi: "901405100000000", id: 12345678, import_date: "2019-01-21T09:36:17Z" },
  event_source: { description: "Network", id: 0 },
  organisation: { name: "8100xxxx", id: 1234 },
  event_severity: { id: 0, description: "INFO" },
  sim: { msisdn: "882285100000000", iccid: "8988228066602306711", id: 12345678, production_date: "2019-01-21T09:36:17Z" },
  description: "PDP Context deleted.",
  alert: false,
  id: 12345678000,
  user: null,
  detail: {
    pdp_context: {
      rat_type: 6,
      mnc: "01",
      apn: null,
      ue_ip_address: "10.196.4.20",
      mcc: "262",
      imeisv: "8635760478506578",
      gtp_version: 1,
    },
    name: "T-Mobile",
    id: 2,
    volume: { rx: 0, tx: 0, total: 0 },
    country: { mcc: "262", iso_code: "de", name: "Germany", id: 74, country_code: "49" },
  },
  endpoint: { tags: null, ip_address: "10.196.4.20", name: "tracker-17", imei: "863576047850651", id: 12345678 },
  event_type: { id: 5, description: "Delete PDP Context" },
  timestamp: "2019-01-21T09:36:17Z",
};

/** SIM status events: the 1NCE examples carry no detail. */
function simStatusEvent(id: number, typeId: number, description: string, statusChange: string) {
  return {
    imsi: { imsi: "901405100000001", id: 1234567, import_date: "2019-01-21T09:36:17Z" },
    event_source: api,
    organisation: { name: "8100xxxx", id: 1234 },
    event_severity: { id: 0, description: "INFO" },
    sim: { msisdn: "882285100000001", iccid: "8988228066602306729", id: 12345678, production_date: "2019-01-21T09:36:17Z" },
    description: statusChange,
    alert: false,
    id,
    user: null,
    endpoint: { tags: null, ip_address: "10.196.4.21", name: "meter-3", imei: null, id: 123456 },
    event_type: { id: typeId, description },
    timestamp: "2019-01-21T09:36:17Z",
  };
}

function purgeEvent(typeId: 15 | 16) {
  return {
    timestamp: "2021-10-27T10:49:23.673Z",
    alert: false,
    description: `${typeId === 15 ? "VLR" : "SGSN"} location information has been purged for IMSI='295090004144444'.`,
    id: typeId === 15 ? 137241622976969 : 133107610288660,
    event_type: { id: typeId, description: typeId === 15 ? "Purge location" : "Purge GPRS location" },
    event_source: network,
    event_severity: severityInfo,
    organisation: { id: 12021, name: "Test Org" },
    endpoint: { id: 11088066, imei: "8693700330003770", ip_address: "100.102.41.209", name: "Test Sim 2", tags: null },
    sim: { iccid: "8988303000005850850", id: 3577707, production_date: "2020-12-23T13:02:11.000Z" },
    imsi: { id: 10770317, import_date: "2020-12-23T13:02:11.000Z", imsi: "295090004144444" },
  };
}

const quotaThresholdReached = {
  imsi: { imsi: "901405100000002", id: 12345678, import_date: "2019-01-21T09:36:17Z" },
  event_source: { description: "Policy Control", id: 1 },
  organisation: { name: "8100xxxx", id: 12345 },
  event_severity: { id: 1, description: "WARN" },
  sim: { msisdn: "882285100000002", iccid: "8988228066602306737", id: 12345678, production_date: "2019-01-21T09:36:17Z" },
  description: "Endpoint quota threshold reached, volume is below 20%.",
  alert: true,
  id: 1234567890,
  user: null,
  detail: { quota: { threshold_volume: 118.983794, volume: 118.968383, threshold_percentage: 20 } },
  endpoint: { tags: null, ip_address: "10.196.4.22", name: "meter-4", imei: null, id: 12345678 },
  event_type: { id: 18, description: "Quota threshold reached" },
  timestamp: "2019-01-21T09:36:17Z",
};

function request(body: unknown, authorization?: string): IngestRequest {
  return ingestRequest(
    body,
    { "content-type": "application/json", ...(authorization === undefined ? {} : { authorization }) },
    "https://ingest.simroot.example/v1/sources/src_ds/events",
  );
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

const parseOne = (record: unknown) => onlyEvent(datastreamerAdapter.parse(request([record])));

describe("datastreamer authentication", () => {
  const oneNce: SourceCredentials = { basicUser: "simroot-1nce", basicPassword: "s3cret-pa55" };

  it("accepts the configured HTTP Basic credentials (1NCE)", () => {
    expect(() => datastreamerAdapter.authenticate(request([], basic("simroot-1nce", "s3cret-pa55")), oneNce)).not.toThrow();
  });

  it.each([
    ["a wrong password", basic("simroot-1nce", "guess")],
    ["a wrong user", basic("someone", "s3cret-pa55")],
    ["no Authorization header", undefined],
    ["a bearer token instead", "Bearer s3cret-pa55"],
    ["Basic without a colon", `Basic ${Buffer.from("simroot-1nce").toString("base64")}`],
  ])("refuses %s when Basic is configured", (_, authorization) => {
    authFailure(() => datastreamerAdapter.authenticate(request([], authorization), oneNce));
  });

  it("accepts any request when the source has no Basic credentials (emnify documents none)", () => {
    expect(() => datastreamerAdapter.authenticate(request([]), {})).not.toThrow();
    expect(() => datastreamerAdapter.authenticate(request([], basic("any", "thing")), {})).not.toThrow();
  });
});

describe("datastreamer mapping", () => {
  it("maps Update location in another country than the IMSI's to roaming, with the visited MCC and country", () => {
    expect(parseOne(updateLocation)).toEqual({
      type: "device.roaming-changed",
      dedupeKey: "201370709",
      occurredAt: "2017-10-26T07:28:00.000Z",
      device: { iccid: "8988303001234567890", imsi: "901430111111111", imei: "867730051111114", ip: "100.96.234.249" },
      sourceType: "1 Update location",
      data: { roaming: true, mcc: "262", country: "DE" },
    });
  });

  it("maps Update GPRS location in the IMSI's own country to not roaming", () => {
    expect(parseOne(updateGprsLocation)).toMatchObject({
      type: "device.roaming-changed",
      dedupeKey: "133107715407872",
      data: { roaming: false, mcc: "262" },
    });
  });

  it("records a location update without the visited network's MCC as source.unhandled", () => {
    const { detail: _omitted, ...withoutDetail } = updateLocation;
    expect(parseOne(withoutDetail)).toMatchObject({ type: "source.unhandled", data: { sourceType: "1 Update location" } });
  });

  it("maps an accepted Create PDP Context to sim.attached with RAT, PLMN, APN, session IP and IMEI from the IMEISV", () => {
    expect(parseOne(createPdpContext)).toEqual({
      type: "sim.attached",
      dedupeKey: "137112624332866",
      occurredAt: "2021-10-27T08:38:02.000Z",
      device: { iccid: "8988303000005733850", imsi: "295090004145444", imei: "869370022000373", ip: "100.102.41.209" },
      sourceType: "3 Create PDP Context",
      data: {
        bearer: "cellular",
        rat: "GERA",
        plmn: { mcc: "262", mnc: "02" },
        apn: "em",
        ipv4: "100.112.45.209",
        imei: "869370022000373",
      },
    });
  });

  it.each([
    [1, "UTRA", "cellular"],
    [6, "EUTRA", "cellular"],
    [8, "NBIOT", "cellular"],
    [9, "LTE-M", "cellular"],
    [10, "NR", "cellular"],
    [17, "NB_IOT_GEO", "satellite"],
  ])("reads rat_type %i as %s (%s)", (ratType, rat, bearer) => {
    const record = {
      ...createPdpContext,
      detail: { ...createPdpContext.detail, pdp_context: { ...createPdpContext.detail.pdp_context, rat_type: ratType } },
    };
    expect(parseOne(record).data).toMatchObject({ rat, bearer });
  });

  it("keeps a session of an unknown rat_type as cellular without a RAT", () => {
    const record = {
      ...createPdpContext,
      detail: { ...createPdpContext.detail, pdp_context: { ...createPdpContext.detail.pdp_context, rat_type: 99 } },
    };
    const data = parseOne(record).data;
    expect(data).toMatchObject({ bearer: "cellular" });
    expect(data).not.toHaveProperty("rat");
  });

  it("records a rejected Create PDP Context (no pdp_context) as source.unhandled with its description", () => {
    expect(parseOne(createPdpContextRejected)).toMatchObject({
      type: "source.unhandled",
      data: {
        sourceType: "3 Create PDP Context",
        summary: {
          eventTypeId: 3,
          description: "PDP Context Request rejected, because endpoint has no quota.",
          eventSource: "Policy Control",
        },
      },
    });
  });

  it("maps Delete PDP Context to sim.detached on the session's bearer", () => {
    expect(parseOne(deletePdpContext)).toEqual({
      type: "sim.detached",
      dedupeKey: "12345678000",
      occurredAt: "2019-01-21T09:36:17.000Z",
      device: {
        iccid: "8988228066602306711",
        imsi: "901405100000000",
        imei: "863576047850651",
        msisdn: "882285100000000",
        ip: "10.196.4.20",
      },
      sourceType: "5 Delete PDP Context",
      data: { bearer: "cellular", reason: "PDP Context deleted." },
    });
  });

  it.each([15, 16] as const)("maps purge event %i to sim.detached", (typeId) => {
    expect(parseOne(purgeEvent(typeId))).toMatchObject({
      type: "sim.detached",
      data: { bearer: "cellular", reason: expect.stringContaining("purged") },
    });
  });

  it.each([
    [8, "SIM activation", "device.reinstated", "Status of SIM changed from 'Suspended' to 'Activated'"],
    [9, "SIM suspension", "device.suspended", "Status of SIM changed from 'Activated' to 'Suspended'"],
    [10, "SIM deletion", "device.revoked", "SIM deleted"],
  ])("maps event type %i (%s) to %s", (typeId, description, type, statusChange) => {
    const event = parseOne(simStatusEvent(1234567890 + typeId, typeId, description, statusChange));
    expect(event).toMatchObject({ type, dedupeKey: String(1234567890 + typeId), data: { reason: statusChange } });
    expect(event.device).toEqual({ iccid: "8988228066602306729", imsi: "901405100000001", msisdn: "882285100000001", ip: "10.196.4.21" });
  });

  it("records other event types (quota threshold) as source.unhandled", () => {
    expect(parseOne(quotaThresholdReached)).toMatchObject({
      type: "source.unhandled",
      dedupeKey: "1234567890",
      data: { sourceType: "18 Quota threshold reached", summary: { eventTypeId: 18, eventSource: "Policy Control" } },
    });
  });

  it("accepts a single record, as the non-bulk RestAPI integration posts it", () => {
    const items = datastreamerAdapter.parse(request(createPdpContext));
    expect(onlyEvent(items).type).toBe("sim.attached");
  });
});

describe("datastreamer batches", () => {
  it("reports a bad record as its own refused item, keeps the others, and accepts an organisation event without events", () => {
    const noTimestamp = { ...updateGprsLocation, timestamp: "yesterday" };
    const organisationEvent = {
      timestamp: "2019-01-21T09:36:17Z",
      alert: false,
      description: "Data quota management got enabled for service profile (id = 123123 - Generic with Quota or Limits).",
      id: 1234567891,
      event_type: { id: 52, description: "Data quota enabled" },
      event_source: { id: 2, description: "API" },
      event_severity: { id: 1, description: "Warn" },
      organisation: { id: 1234, name: "87123123" },
    };
    const items = datastreamerAdapter.parse(request([createPdpContext, noTimestamp, "not a record", organisationEvent, deletePdpContext]));
    expect(items.map((item) => [item.index, item.ok])).toEqual([
      [0, true],
      [1, false],
      [2, false],
      [3, true],
      [4, true],
    ]);
    expect(items[1]).toEqual({
      index: 1,
      ok: false,
      issues: [{ path: "timestamp", message: "must be an ISO 8601 date-time with a UTC offset" }],
    });
    expect(items[2]).toMatchObject({ ok: false, issues: [{ path: "" }] });
    expect(items[3]).toEqual({ index: 3, ok: true, events: [] });
    for (const item of items) if (item.ok) for (const event of item.events) normalizedEventSchema.parse(event);
  });

  it.each([
    ["text", "event stream"],
    ["a number", "42"],
    ["null", "null"],
  ])("throws ingest.invalid_body for %s", (_, body) => {
    invalidBodyFailure(() => datastreamerAdapter.parse(request(body)));
  });
});

describe("imeiOf", () => {
  it("keeps a Luhn-valid IMEI, recomputes the check digit of an IMEISV, a 14-digit IMEI or any 15th digit, drops the rest", () => {
    expect(imeiOf("490154203237518")).toBe("490154203237518");
    expect(imeiOf("4901542032375101")).toBe("490154203237518");
    expect(imeiOf("49015420323751")).toBe("490154203237518");
    // The 15th digit is the equipment's own claim: the equipment is its TAC and serial number (review 123).
    expect(imeiOf("490154203237519")).toBe("490154203237518");
    expect(imeiOf("<imei>")).toBeUndefined();
    expect(imeiOf(null)).toBeUndefined();
  });
});
