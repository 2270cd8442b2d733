/**
 * Bodies follow the TS 29.122 MonitoringEvent API (TS29122_MonitoringEvent.yaml, as published in
 * jdegre/5GC_APIs for Rel-16/17): MonitoringNotification { subscription, monitoringEventReports[] },
 * MonitoringEventReport { monitoringType, externalId, msisdn, eventTime, roamingStatus,
 * plmnId {mcc, mnc}, reachabilityType, lossOfConnectReason, imeiChange, locationInfo,
 * pdnConnInfoList[] { status, apn, pdnType, ipv4Addr, ipv6Addrs } }, with the Rel-15
 * `pdnConnInfo`/`ipv6Addr` and Rel-18 `ueIpAddr` forms. `ratType` and `pei` are deployment
 * additions (TS 29.571 RatType / Pei), not TS 29.122 fields.
 */
import { describe, expect, it } from "vitest";
import { normalizedEventSchema, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import type { AdapterItem, IngestRequest } from "../adapter.ts";
import { nefAdapter } from "./nef.ts";
import { authFailure, ingestRequest, invalidBodyFailure, now, onlyEvent as onlyEventOf, thrown } from "./test-support.ts";

const token = "nef-notification-token-8c21d";
const subscription = "https://nef.operator.example/3gpp-monitoring-event/v1/scs-fleet/subscriptions/6f1b";
const externalId = "device-0042@iot.operator.example";
const eventTime = "2026-03-01T11:59:30Z";

/** `null` sends no Authorization header. */
function request(body: unknown, authorization: string | null = `Bearer ${token}`): IngestRequest {
  return ingestRequest(body, { "content-type": "application/json", ...(authorization === null ? {} : { authorization }) });
}

const notification = (...monitoringEventReports: unknown[]) => ({ subscription, monitoringEventReports });

function acceptedEvents(item: AdapterItem | undefined): readonly NormalizedEvent[] {
  if (!item?.ok) throw new Error(`expected an accepted item, got ${JSON.stringify(item)}`);
  for (const event of item.events) expect(() => normalizedEventSchema.parse(event)).not.toThrow();
  return item.events;
}

/** The one event a notification of this one report yields. */
const onlyEvent = (report: Record<string, unknown>) => onlyEventOf(nefAdapter.parse(request(notification(report))));

describe("nef adapter: authentication", () => {
  it("accepts the configured bearer token", () => {
    expect(() => nefAdapter.authenticate(request({}), { bearerToken: token })).not.toThrow();
  });

  it.each([
    ["a forged token", "Bearer nef-notification-token-8c21e"],
    ["a token prefix", "Bearer nef-notification"],
    ["no Authorization header", null],
  ])("refuses %s with an auth error", (_, authorization) => {
    authFailure(() => nefAdapter.authenticate(request({}, authorization), { bearerToken: token }));
  });

  it("refuses everything when the source has no token configured", () => {
    expect(thrown(() => nefAdapter.authenticate(request({}), {})).kind).toBe("auth");
  });
});

describe("nef adapter: PDN connectivity status", () => {
  const created = { status: "CREATED", apn: "fleet.iot", pdnType: "IPV4V6", ipv4Addr: "10.20.0.7", ipv6Addrs: ["2001:db8:1::7"] };

  it("maps a CREATED connection to a cellular attach with the APN and addresses", () => {
    const event = onlyEvent({ externalId, monitoringType: "PDN_CONNECTIVITY_STATUS", eventTime, pdnConnInfoList: [created] });
    expect(event).toEqual({
      type: "sim.attached",
      dedupeKey: `${subscription}|PDN_CONNECTIVITY_STATUS|${externalId}|${eventTime}`,
      occurredAt: eventTime,
      device: { externalId, ip: "10.20.0.7" },
      data: { bearer: "cellular", apn: "fleet.iot", ipv4: "10.20.0.7", ipv6: "2001:db8:1::7" },
      sourceType: "PDN_CONNECTIVITY_STATUS",
    });
  });

  it("keys a report by its external identifier as compared, so a resend spelling the domain otherwise is a duplicate (review 61)", () => {
    const report = { monitoringType: "PDN_CONNECTIVITY_STATUS", eventTime, pdnConnInfoList: [created] };
    const first = onlyEvent({ ...report, externalId });
    const resent = onlyEvent({ ...report, externalId: "device-0042@IoT.Operator.Example" });
    expect(resent.dedupeKey).toBe(first.dedupeKey);
    // The local part is the operator's to spell.
    expect(onlyEvent({ ...report, externalId: "DEVICE-0042@iot.operator.example" }).dedupeKey).not.toBe(first.dedupeKey);
  });

  it.each([
    ["WLAN", "wifi"],
    ["TRUSTED_WLAN", "wifi"],
    ["NON_3GPP_ACCESS", "wifi"],
    ["NR_LEO", "satellite"],
    ["NB_IOT_GEO", "satellite"],
    ["LTE_M_OTHERSAT", "satellite"],
    ["EUTRA", "cellular"],
  ])("takes the bearer of ratType %s as %s", (ratType, bearer) => {
    const event = onlyEvent({ externalId, monitoringType: "PDN_CONNECTIVITY_STATUS", eventTime, ratType, pdnConnInfoList: [created] });
    expect(event.type).toBe("sim.attached");
    expect(event.data).toMatchObject({ bearer, rat: ratType });
  });

  it("maps a RELEASED connection to a detach", () => {
    const event = onlyEvent({
      msisdn: "491701234567",
      monitoringType: "PDN_CONNECTIVITY_STATUS",
      eventTime,
      ratType: "NR_GEO",
      pdnConnInfoList: [{ status: "RELEASED", apn: "fleet.iot", pdnType: "IPV4", ipv4Addr: "10.20.0.7" }],
    });
    expect(event.type).toBe("sim.detached");
    expect(event.data).toEqual({ bearer: "satellite" });
    expect(event.device).toEqual({ msisdn: "491701234567", ip: "10.20.0.7" });
    expect(event.dedupeKey).toBe(`${subscription}|PDN_CONNECTIVITY_STATUS|491701234567|${eventTime}`);
  });

  it("emits one event per connection with distinct dedupe keys", () => {
    const items = nefAdapter.parse(
      request(
        notification({
          externalId,
          monitoringType: "PDN_CONNECTIVITY_STATUS",
          eventTime,
          pdnConnInfoList: [created, { status: "RELEASED", apn: "mgmt.iot", pdnType: "IPV4", ipv4Addr: "10.99.0.3" }],
        }),
      ),
    );
    const events = acceptedEvents(items[0]);
    expect(events.map((event) => event.type)).toEqual(["sim.attached", "sim.detached"]);
    expect(new Set(events.map((event) => event.dedupeKey)).size).toBe(2);
  });

  it("reads the Rel-15 single pdnConnInfo with ipv6Addr", () => {
    const event = onlyEvent({
      externalId,
      monitoringType: "PDN_CONNECTIVITY_STATUS",
      eventTime,
      pdnConnInfo: { status: "CREATED", apn: "fleet.iot", pdnType: "IP", ipv6Addr: "2001:db8:1::9" },
    });
    expect(event.data).toEqual({ bearer: "cellular", apn: "fleet.iot", ipv6: "2001:db8:1::9" });
    expect(event.device).toEqual({ externalId, ip: "2001:db8:1::9" });
  });

  it("records a status it does not know as unhandled", () => {
    const event = onlyEvent({
      externalId,
      monitoringType: "PDN_CONNECTIVITY_STATUS",
      eventTime,
      pdnConnInfoList: [{ status: "SUSPENDED", apn: "fleet.iot", pdnType: "IPV4", ipv4Addr: "10.20.0.7" }],
    });
    expect(event.type).toBe("source.unhandled");
    expect(event.data).toEqual({
      sourceType: "PDN_CONNECTIVITY_STATUS",
      summary: { status: "SUSPENDED", apn: "fleet.iot", pdnType: "IPV4" },
    });
  });

  it("refuses a PDN report without connection information and a malformed address, naming them", () => {
    const items = nefAdapter.parse(
      request(
        notification(
          { externalId, monitoringType: "PDN_CONNECTIVITY_STATUS", eventTime },
          {
            externalId,
            monitoringType: "PDN_CONNECTIVITY_STATUS",
            eventTime,
            pdnConnInfoList: [{ status: "CREATED", pdnType: "IPV4", ipv4Addr: "10.20.0.300" }],
          },
        ),
      ),
    );
    expect(items).toEqual([
      { index: 0, ok: false, issues: [{ path: "pdnConnInfoList", message: expect.any(String) }] },
      { index: 1, ok: false, issues: [{ path: "pdnConnInfoList.0.ipv4Addr", message: expect.any(String) }] },
    ]);
  });
});

describe("nef adapter: reachability, roaming, equipment and location", () => {
  it("maps LOSS_OF_CONNECTIVITY to unreachable", () => {
    const event = onlyEvent({ externalId, monitoringType: "LOSS_OF_CONNECTIVITY", lossOfConnectReason: 7, eventTime });
    expect(event.type).toBe("device.reachability-changed");
    expect(event.data).toEqual({ reachable: false });
  });

  it.each([
    ["DATA", { reachable: true, via: "data" }],
    ["SMS", { reachable: true, via: "sms" }],
    [undefined, { reachable: true }],
  ])("maps UE_REACHABILITY (reachabilityType %s) to reachable", (reachabilityType, data) => {
    const event = onlyEvent({
      externalId,
      monitoringType: "UE_REACHABILITY",
      eventTime,
      ...(reachabilityType ? { reachabilityType } : {}),
    });
    expect(event.type).toBe("device.reachability-changed");
    expect(event.data).toEqual(data);
  });

  it("maps ROAMING_STATUS with the serving PLMN's MCC and country", () => {
    const event = onlyEvent({
      externalId,
      monitoringType: "ROAMING_STATUS",
      eventTime,
      roamingStatus: true,
      plmnId: { mcc: "208", mnc: "01" },
    });
    expect(event.type).toBe("device.roaming-changed");
    expect(event.data).toEqual({ roaming: true, mcc: "208", country: "FR" });
  });

  it("takes an omitted roamingStatus as not roaming, leaving out the home PLMN", () => {
    const event = onlyEvent({ externalId, monitoringType: "ROAMING_STATUS", eventTime, plmnId: { mcc: "262", mnc: "01" } });
    expect(event.data).toEqual({ roaming: false });
  });

  it("maps CHANGE_OF_IMSI_IMEI_ASSOCIATION to an equipment change when the deployment reports the PEI", () => {
    const event = onlyEvent({
      externalId,
      monitoringType: "CHANGE_OF_IMSI_IMEI_ASSOCIATION",
      imeiChange: "IMEI",
      pei: "imei-490154203237518",
      eventTime,
    });
    expect(event.type).toBe("device.equipment-changed");
    expect(event.data).toEqual({ imei: "490154203237518" });
  });

  it("maps a TS 29.122 IMEI change that carries no new IMEI to an equipment change of unknown IMEI (the change is the signal)", () => {
    const event = onlyEvent({ externalId, monitoringType: "CHANGE_OF_IMSI_IMEI_ASSOCIATION", imeiChange: "IMEI", eventTime });
    expect(event.type).toBe("device.equipment-changed");
    expect(event.data).toEqual({ association: "IMEI" });
    const bare = onlyEvent({ externalId, monitoringType: "CHANGE_OF_IMSI_IMEI_ASSOCIATION", eventTime });
    expect(bare.data).toEqual({ association: "IMEI" });
  });

  it("records LOCATION_REPORTING as unhandled with where the device is", () => {
    const event = onlyEvent({
      externalId,
      monitoringType: "LOCATION_REPORTING",
      eventTime,
      locationInfo: { ageOfLocationInfo: 2, cellId: "26201AB12CD34", trackingAreaId: "26201A1B2", plmnId: "26201" },
    });
    expect(event.type).toBe("source.unhandled");
    expect(event.data).toEqual({
      sourceType: "LOCATION_REPORTING",
      summary: { cellId: "26201AB12CD34", trackingAreaId: "26201A1B2", plmnId: "26201", ageOfLocationInfo: 2 },
    });
  });

  it("records other monitoring types as unhandled", () => {
    const event = onlyEvent({ externalId, monitoringType: "COMMUNICATION_FAILURE", eventTime, failureCause: { s1ApCause: 20 } });
    expect(event).toMatchObject({ type: "source.unhandled", data: { sourceType: "COMMUNICATION_FAILURE" } });
  });
});

describe("nef adapter: reports and bodies", () => {
  it("stamps a report without eventTime with now", () => {
    const event = onlyEvent({ msisdn: "491701234567", monitoringType: "LOSS_OF_CONNECTIVITY" });
    expect(event.occurredAt).toBe(now.toISOString());
    expect(event.dedupeKey).toBe(`${subscription}|LOSS_OF_CONNECTIVITY|491701234567|${now.toISOString()}`);
  });

  it("identifies the device by the Rel-18 ueIpAddr when that is all there is", () => {
    const event = onlyEvent({
      monitoringType: "UE_REACHABILITY",
      reachabilityType: "DATA",
      ueIpAddr: { ipv4Addr: "10.20.0.8" },
      eventTime,
    });
    expect(event.device).toEqual({ ip: "10.20.0.8" });
    expect(event.dedupeKey).toBe(`${subscription}|UE_REACHABILITY|10.20.0.8|${eventTime}`);
  });

  it("reports a batch per item, naming the fields of the bad ones", () => {
    const items = nefAdapter.parse(
      request(
        notification(
          { externalId, monitoringType: "LOSS_OF_CONNECTIVITY", eventTime },
          { monitoringType: "LOSS_OF_CONNECTIVITY", eventTime },
          { externalId, eventTime },
          { externalId, monitoringType: "ROAMING_STATUS", roamingStatus: true, plmnId: { mcc: "2620", mnc: "01" }, eventTime },
          { externalId, monitoringType: "UE_REACHABILITY", eventTime: "half past noon" },
          "not a report",
          { externalId, monitoringType: "UE_REACHABILITY", reachabilityType: "SMS", eventTime },
        ),
      ),
    );
    expect(items.map((item) => [item.index, item.ok])).toEqual([
      [0, true],
      [1, false],
      [2, false],
      [3, false],
      [4, false],
      [5, false],
      [6, true],
    ]);
    const paths = (index: number) => {
      const item = items[index];
      return item && !item.ok ? item.issues.map((issue) => issue.path) : [];
    };
    expect(paths(1)).toEqual(["externalId"]);
    expect(paths(2)).toEqual(["monitoringType"]);
    expect(paths(3)).toEqual(["plmnId.mcc"]);
    expect(paths(4)).toEqual(["eventTime"]);
    expect(paths(5)).toEqual([""]);
  });

  it("yields no items for a notification without reports (test notification, cancellation)", () => {
    expect(nefAdapter.parse(request({ subscription }))).toEqual([]);
    expect(nefAdapter.parse(request({ subscription, cancelInd: true }))).toEqual([]);
  });

  it("throws ingest.invalid_body for garbage bodies, naming what is wrong", () => {
    for (const body of ["not json", "", "[]", '"text"', "7", "null"]) invalidBodyFailure(() => nefAdapter.parse(request(body)));
    const noSubscription = thrown(() => nefAdapter.parse(request({ monitoringEventReports: [] })));
    expect(noSubscription.issues.map((issue) => issue.path)).toEqual(["subscription"]);
    const reportsNotArray = thrown(() =>
      nefAdapter.parse(request({ subscription, monitoringEventReports: { monitoringType: "UE_REACHABILITY" } })),
    );
    expect(reportsNotArray.issues.map((issue) => issue.path)).toEqual(["monitoringEventReports"]);
  });
});
