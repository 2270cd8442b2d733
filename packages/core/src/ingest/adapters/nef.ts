/**
 * Format `nef`: 3GPP Monitoring Event notifications from an SCEF/NEF (TS 29.122 §5.3 T8
 * MonitoringEvent API, reused northbound by the 5G NEF per TS 29.522). The body is a
 * MonitoringNotification `{ subscription, configResults?, monitoringEventReports?, cancelInd? }`;
 * each MonitoringEventReport is one item. A notification without reports (a test notification,
 * a cancellation) yields no items.
 *
 * Authentication: `Authorization: Bearer <token>`. The 3GPP interface secures this with mTLS or
 * OAuth2 (deployment-specific); the token binds the request to the configured source.
 *
 * The device: report `externalId` (GPSI `local@domain`) and/or `msisdn`, plus its address: the
 * Rel-18 `ueIpAddr` or, for PDN connectivity reports, the PDN connection's address. Reports have
 * no event id, so `${subscription}|${monitoringType}|${identifier}|${eventTime}` keys them
 * (identifier: externalId, else msisdn, else the IP address); without `eventTime` the report
 * is stamped with now and a redelivery cannot be recognised.
 *
 * Beyond TS 29.122, read when a deployment adds them: `ratType` (TS 29.571 RatType; the report
 * itself carries no RAT, so sessions default to cellular) and `pei` / `imei` (the report's
 * `imeiChange` only says whether the IMEI or just the IMEISV changed, never the new value).
 */
import * as z from "zod";
import { ipv6Schema, timestampSchema, type DeviceRef, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import { countryOfMcc } from "../../catalogue/mcc.ts";
import { bearerOfRat } from "../../catalogue/rat.ts";
import { SimrootError, type FieldIssue } from "../../error.ts";
import type { Adapter, AdapterItem } from "../adapter.ts";
import { authenticateBearerToken } from "./auth.ts";
import { atMostPerRequest, isRecord, jsonObject } from "./body.ts";
import { checkedItem, pick, refused, zodIssues, type Fact, type Refusal } from "./items.ts";
import { externalIdAlias } from "../../device/identifiers.ts";

export const nefAdapter: Adapter = {
  format: "nef",
  /** TS 29.122 notifications (3GPP's OpenAPI) are `application/json`. */
  mediaTypes: ["application/json"],

  authenticate: authenticateBearerToken,

  parse(request) {
    const notification = monitoringNotification(request.body);
    const reports = atMostPerRequest(notification.monitoringEventReports ?? [], "reports");
    // Each PDN connection of a report is an event of its own: bounded before any report is read, as the reports are.
    atMostPerRequest(
      reports.flatMap((raw) => (isRecord(raw) && Array.isArray(raw["pdnConnInfoList"]) ? raw["pdnConnInfoList"] : [])),
      "PDN connections",
    );
    return reports.map((raw, index) => reportItem(notification.subscription, raw, index, request.now));
  },
};

// --- wire shapes (TS 29.122 MonitoringEvent API, TS29122_MonitoringEvent.yaml) ---------------

const notificationSchema = z.object({
  subscription: z.string({ error: "a MonitoringNotification names its subscription (a URI)" }).min(1),
  monitoringEventReports: z.array(z.unknown(), { error: "monitoringEventReports must be an array" }).optional(),
});

/** TS 29.122 CommonData PlmnId. */
const plmnIdSchema = z.object({
  mcc: z.string().regex(/^\d{3}$/, "an MCC is 3 digits"),
  mnc: z.string().regex(/^\d{2,3}$/, "an MNC is 2 or 3 digits"),
});

/** PdnConnectionInformation: `ipv6Addrs` from Rel-16 on, `ipv6Addr` before. */
const pdnConnectionSchema = z.object({
  status: z.string().min(1),
  apn: z.string().max(100).optional(),
  pdnType: z.string().optional(),
  interfaceInd: z.string().optional(),
  ipv4Addr: z.ipv4().optional(),
  ipv6Addrs: z.array(ipv6Schema).min(1).optional(),
  ipv6Addr: ipv6Schema.optional(),
});
type PdnConnection = z.output<typeof pdnConnectionSchema>;

const reportSchema = z.object({
  monitoringType: z.string().min(1).max(200),
  externalId: z.string().min(1).max(253).optional(),
  msisdn: z
    .string()
    .regex(/^\+?\d{6,15}$/, "an MSISDN is 6 to 15 digits")
    .optional(),
  /** Rel-18 TS 29.571 IpAddr. */
  ueIpAddr: z.object({ ipv4Addr: z.ipv4().optional(), ipv6Addr: ipv6Schema.optional() }).optional(),
  eventTime: timestampSchema.optional(),
  roamingStatus: z.boolean().optional(),
  plmnId: plmnIdSchema.optional(),
  pdnConnInfoList: z.array(pdnConnectionSchema).min(1).optional(),
  /** Rel-15: a single connection. */
  pdnConnInfo: pdnConnectionSchema.optional(),
  reachabilityType: z.string().optional(),
  imeiChange: z.string().optional(),
  locationInfo: z.record(z.string(), z.unknown()).optional(),
  // Not TS 29.122: see the header.
  ratType: z.string().max(32).optional(),
  pei: z.string().optional(),
  imei: z.string().optional(),
});
type Report = z.output<typeof reportSchema>;

// --- translation ---------------------------------------------------------------------------

function reportItem(subscription: string, raw: unknown, index: number, now: Date): AdapterItem {
  const parsed = reportSchema.safeParse(raw);
  if (!parsed.success) return refused(index, zodIssues(parsed.error));
  const report = parsed.data;
  const device = deviceOf(report);
  // One report whatever the case of its external identifier's domain (it names one device: device/identifiers.ts).
  const identifier = (report.externalId && externalIdAlias(report.externalId)) ?? report.msisdn ?? device.ip;
  if (identifier === undefined) {
    return refused(index, [{ path: "externalId", message: "the report names no device: externalId, msisdn or an IP address is needed" }]);
  }
  const facts = factsOf(report);
  if ("issues" in facts) return refused(index, facts.issues);
  const occurredAt = report.eventTime ?? now.toISOString();
  const dedupeKey = `${subscription}|${report.monitoringType}|${identifier}|${occurredAt}`;
  const events = facts.map(
    (fact, position) =>
      ({
        dedupeKey: facts.length > 1 ? `${dedupeKey}|${position}` : dedupeKey,
        occurredAt,
        device,
        sourceType: report.monitoringType,
        ...fact,
      }) as NormalizedEvent,
  );
  return checkedItem(index, events);
}

function factsOf(report: Report): Fact[] | Refusal {
  switch (report.monitoringType) {
    case "PDN_CONNECTIVITY_STATUS":
      return pdnFacts(report);
    case "LOSS_OF_CONNECTIVITY":
      return [{ type: "device.reachability-changed", data: { reachable: false } }];
    case "UE_REACHABILITY": {
      const via = report.reachabilityType === "SMS" ? "sms" : report.reachabilityType === "DATA" ? "data" : undefined;
      return [{ type: "device.reachability-changed", data: { reachable: true, ...(via === undefined ? {} : { via }) } }];
    }
    case "ROAMING_STATUS":
      return [roamingFact(report)];
    case "CHANGE_OF_IMSI_IMEI_ASSOCIATION":
      return [equipmentFact(report)];
    case "LOCATION_REPORTING":
      return [
        unhandled(
          report,
          pick(report.locationInfo ?? {}, [
            "cellId",
            "enodeBId",
            "routingAreaId",
            "trackingAreaId",
            "plmnId",
            "twanId",
            "ageOfLocationInfo",
          ]),
        ),
      ];
    default:
      return [unhandled(report, {})];
  }
}

/** One event per PDN connection: CREATED attaches, RELEASED detaches, anything newer is recorded. */
function pdnFacts(report: Report): Fact[] | Refusal {
  const connections = report.pdnConnInfoList ?? (report.pdnConnInfo ? [report.pdnConnInfo] : undefined);
  if (!connections)
    return { issues: [{ path: "pdnConnInfoList", message: "a PDN_CONNECTIVITY_STATUS report needs its PDN connection information" }] };
  const bearer = bearerOfRat(report.ratType ?? "");
  return connections.map((connection): Fact => {
    switch (connection.status) {
      case "CREATED": {
        const ipv6 = ipv6Of(connection);
        return {
          type: "sim.attached",
          data: {
            bearer,
            ...(report.ratType === undefined ? {} : { rat: report.ratType }),
            ...(report.plmnId === undefined ? {} : { plmn: report.plmnId }),
            ...(connection.apn === undefined ? {} : { apn: connection.apn }),
            ...(connection.ipv4Addr === undefined ? {} : { ipv4: connection.ipv4Addr }),
            ...(ipv6 === undefined ? {} : { ipv6 }),
          },
        };
      }
      case "RELEASED":
        return { type: "sim.detached", data: { bearer } };
      default:
        return unhandled(report, pick(connection, ["status", "apn", "pdnType"]));
    }
  });
}

/** `roamingStatus` is "set to false or omitted" when not roaming; `plmnId` is the serving network. */
function roamingFact(report: Report): Fact {
  const roaming = report.roamingStatus ?? false;
  if (!roaming || !report.plmnId) return { type: "device.roaming-changed", data: { roaming } };
  const { mcc } = report.plmnId;
  const country = countryOfMcc(mcc);
  return { type: "device.roaming-changed", data: { roaming, mcc, ...(country === undefined ? {} : { country }) } };
}

/**
 * TS 29.122 reports only that the IMSI-IMEI association changed (`imeiChange`: IMEI or IMEISV),
 * not the new IMEI. With a deployment's `pei` (`imei-<15>` / `imeisv-<16>`, TS 29.571 Pei) or
 * `imei` the new IMEI is known; without, the change itself is the signal: an equipment change
 * of unknown IMEI, which quarantines a locked device (the fold learns the IMEI reported next).
 */
function equipmentFact(report: Report): Fact {
  const imei = imeiOf(report.pei) ?? imeiOf(report.imei);
  if (imei !== undefined) return { type: "device.equipment-changed", data: { imei } };
  return { type: "device.equipment-changed", data: { association: report.imeiChange === "IMEISV" ? "IMEISV" : "IMEI" } };
}

function imeiOf(value: string | undefined): string | undefined {
  const digits = value?.replace(/^imei(sv)?-/i, "");
  return digits !== undefined && /^\d{14,16}$/.test(digits) ? digits : undefined;
}

function unhandled(report: Report, summary: Record<string, unknown>): Fact {
  return { type: "source.unhandled", data: { sourceType: report.monitoringType, ...(Object.keys(summary).length > 0 ? { summary } : {}) } };
}

function deviceOf(report: Report): DeviceRef {
  const connection = report.pdnConnInfoList?.[0] ?? report.pdnConnInfo;
  const ip = report.ueIpAddr?.ipv4Addr ?? report.ueIpAddr?.ipv6Addr ?? connection?.ipv4Addr ?? (connection && ipv6Of(connection));
  return {
    ...(report.externalId === undefined ? {} : { externalId: report.externalId }),
    ...(report.msisdn === undefined ? {} : { msisdn: report.msisdn }),
    ...(ip === undefined ? {} : { ip }),
  };
}

function ipv6Of(connection: PdnConnection): string | undefined {
  return connection.ipv6Addrs?.[0] ?? connection.ipv6Addr;
}

// --- shared --------------------------------------------------------------------------------

function monitoringNotification(body: string): z.output<typeof notificationSchema> {
  const parsed = jsonObject(body, (message) => invalidBody([{ path: "", message }]), "the body must be a MonitoringNotification object");
  const notification = notificationSchema.safeParse(parsed);
  if (!notification.success) throw invalidBody(zodIssues(notification.error));
  return notification.data;
}

function invalidBody(issues: FieldIssue[]): SimrootError {
  return new SimrootError(
    "ingest.invalid_body",
    "input",
    `Invalid NEF MonitoringNotification: ${issues.map((issue) => `${issue.path || "body"}: ${issue.message}`).join("; ")}`,
    {
      issues,
    },
  );
}
