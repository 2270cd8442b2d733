/**
 * Format `datastreamer`: the emnify Data Streamer and the 1NCE Data Streamer (the same
 * platform) delivering event records to a REST endpoint. The "RestAPI" integration posts one
 * record per request, "RestAPI (Bulk)" a JSON array of them; both are accepted, one item per record.
 *
 * Record shape, event type ids and examples: emnify "Event types"
 * (docs.emnify.com/system-events/event-types) and 1NCE "Event Records"
 * (help.1nce.com, platform-services-data-streamer/data-streamer-event-records), whose PDP
 * Context Object table gives `rat_type`: 1 3G, 2 2G, 5 HSPA+, 6 LTE, 8 NB-IoT, 9 CAT-M, the
 * GTPv2 RAT Type values of 3GPP TS 29.274 §8.17.
 *
 * Authentication: 1NCE lets the endpoint require HTTP Basic; emnify documents none, so a
 * source configured without Basic credentials accepts every request (its URL is the secret).
 * The record `id` is unique and repeats on retransmission: it is the dedupe key. Records we do
 * not act on become `source.unhandled`; a well-formed record that names no device (organisation
 * events) yields an accepted item without events.
 */
import * as z from "zod";
import { maxTimestampLength, type Bearer, type DeviceRef, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import { countryOfMcc } from "../../catalogue/mcc.ts";
import { bearerOfRat } from "../../catalogue/rat.ts";
import { withLuhnDigit } from "../../device/identifiers.ts";
import type { FieldIssue } from "../../error.ts";
import type { Adapter, AdapterItem } from "../adapter.ts";
import { sameSecret, unauthenticated } from "./auth.ts";
import { invalidBodyOf, jsonItems } from "./body.ts";
import { checkedItem, refused, zodIssues, type Fact } from "./items.ts";

export const datastreamerAdapter: Adapter = {
  format: "datastreamer",
  /** The RestAPI integrations post JSON. */
  mediaTypes: ["application/json"],

  authenticate(request, { basicUser, basicPassword }) {
    if (basicUser === undefined && basicPassword === undefined) return;
    const presented = basicCredentials(request.headers["authorization"]);
    const userMatches = sameSecret(presented?.user ?? "", basicUser ?? "");
    const passwordMatches = sameSecret(presented?.password ?? "", basicPassword ?? "");
    if (presented === undefined || !userMatches || !passwordMatches) {
      throw unauthenticated("Missing or invalid HTTP Basic credentials");
    }
  },

  parse(request) {
    return jsonItems(request.body, invalidBody, "the body must be an event record or an array of them").map(itemOf);
  },
};

/** emnify / 1NCE event type ids. */
const eventTypes = {
  updateLocation: 1,
  updateGprsLocation: 2,
  createPdpContext: 3,
  deletePdpContext: 5,
  simActivation: 8,
  simSuspension: 9,
  simDeletion: 10,
  purgeLocation: 15,
  purgeGprsLocation: 16,
} as const;

const text = z.string().nullish();

const eventRecordSchema = z.object({
  id: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]),
  /** Normalized to UTC (`isoInstant`); bounded as any stated time is. */
  timestamp: z.string().max(maxTimestampLength),
  event_type: z.object({ id: z.number().int(), description: text }),
  event_source: z.object({ id: z.number().int().nullish(), description: text }).nullish(),
  description: text,
  endpoint: z.object({ imei: text, ip_address: text }).nullish(),
  sim: z.object({ iccid: text, msisdn: text }).nullish(),
  imsi: z.object({ imsi: text }).nullish(),
  detail: z.unknown().optional(),
});
type EventRecord = z.output<typeof eventRecordSchema>;

/** `detail` of location updates: the visited network's operator and country. */
const networkDetailSchema = z.object({
  country: z.object({ mcc: z.string().regex(/^\d{3}$/), iso_code: text }),
});

/** `detail.pdp_context` of PDP context events (absent when the request was rejected). */
const pdpDetailSchema = z.object({
  pdp_context: z.object({
    apn: text,
    ue_ip_address: text,
    rat_type: z.union([z.number().int(), z.string()]).nullish(),
    imeisv: text,
    mcc: text,
    mnc: text,
  }),
});
type PdpContext = z.output<typeof pdpDetailSchema>["pdp_context"];

/** GTPv2 RAT Type (TS 29.274 §8.17, used as emnify/1NCE `rat_type`) to the TS 29.571 RatType name. */
const ratTypeNames: Readonly<Record<number, string>> = {
  1: "UTRA",
  2: "GERA",
  3: "WLAN",
  5: "UTRA", // HSPA Evolution
  6: "EUTRA",
  8: "NBIOT",
  9: "LTE-M",
  10: "NR",
  11: "WB_E_UTRAN_LEO",
  12: "WB_E_UTRAN_MEO",
  13: "WB_E_UTRAN_GEO",
  14: "WB_E_UTRAN_OTHERSAT",
  15: "NB_IOT_LEO",
  16: "NB_IOT_MEO",
  17: "NB_IOT_GEO",
  18: "NB_IOT_OTHERSAT",
  19: "LTE_M_LEO",
  20: "LTE_M_MEO",
  21: "LTE_M_GEO",
  22: "LTE_M_OTHERSAT",
};

function itemOf(raw: unknown, index: number): AdapterItem {
  const parsed = eventRecordSchema.safeParse(raw);
  if (!parsed.success) return refused(index, zodIssues(parsed.error));
  const record = parsed.data;
  const occurredAt = isoInstant(record.timestamp);
  if (occurredAt === undefined) return refused(index, [{ path: "timestamp", message: "must be an ISO 8601 date-time with a UTC offset" }]);
  const device = deviceOf(record);
  if (Object.keys(device).length === 0) {
    // A record that names its SIM or equipment by identifiers none of which is one is refused, naming them (review 119: a
    // SIM deletion was answered 202 and dropped, as if it were about the organisation).
    const malformed = malformedIdentifiers(record);
    if (malformed.length > 0) return refused(index, malformed);
    // Organisation-level records (quota enabled for a service profile, billing, users) name no device: nothing to attribute.
    return { index, ok: true, events: [] };
  }
  const sourceType = `${record.event_type.id} ${record.event_type.description ?? ""}`.trim().slice(0, 200);
  const event = { dedupeKey: String(record.id), occurredAt, device, sourceType, ...factOf(record, sourceType) } as NormalizedEvent;
  return checkedItem(index, [event]);
}

function factOf(record: EventRecord, sourceType: string): Fact {
  const reason = record.description ? { reason: record.description.slice(0, 500) } : {};
  switch (record.event_type.id) {
    case eventTypes.updateLocation:
    case eventTypes.updateGprsLocation:
      return roamingOf(record) ?? unhandled(record, sourceType);
    case eventTypes.createPdpContext:
      return attachmentOf(record) ?? unhandled(record, sourceType);
    case eventTypes.deletePdpContext: {
      const pdp = pdpDetailSchema.safeParse(record.detail);
      return { type: "sim.detached", data: { bearer: pdp.success ? bearerOf(pdp.data.pdp_context).bearer : "cellular", ...reason } };
    }
    case eventTypes.purgeLocation:
    case eventTypes.purgeGprsLocation:
      return { type: "sim.detached", data: { bearer: "cellular", ...reason } };
    case eventTypes.simActivation:
      return { type: "device.reinstated", data: reason };
    case eventTypes.simSuspension:
      return { type: "device.suspended", data: reason };
    case eventTypes.simDeletion:
      return { type: "device.revoked", data: reason };
    default:
      return unhandled(record, sourceType);
  }
}

/** Roaming when the visited network's MCC differs from the home MCC (the IMSI's first 3 digits). */
function roamingOf(record: EventRecord): Fact | undefined {
  const detail = networkDetailSchema.safeParse(record.detail);
  const imsi = record.imsi?.imsi;
  if (!detail.success || !imsi || !/^\d{6,15}$/.test(imsi)) return undefined;
  const { mcc, iso_code } = detail.data.country;
  const country = iso_code && /^[a-z]{2}$/i.test(iso_code) ? iso_code.toUpperCase() : countryOfMcc(mcc);
  return {
    type: "device.roaming-changed",
    data: { roaming: mcc !== imsi.slice(0, 3), mcc, ...(country === undefined ? {} : { country }) },
  };
}

/** An accepted Create PDP Context carries the session; a rejected one has no `pdp_context`. */
function attachmentOf(record: EventRecord): Fact | undefined {
  const detail = pdpDetailSchema.safeParse(record.detail);
  if (!detail.success) return undefined;
  const pdp = detail.data.pdp_context;
  const address = ipAddress(pdp.ue_ip_address);
  const imei = imeiOf(pdp.imeisv);
  return {
    type: "sim.attached",
    data: {
      ...bearerOf(pdp),
      ...(pdp.mcc && pdp.mnc && /^\d{3}$/.test(pdp.mcc) && /^\d{2,3}$/.test(pdp.mnc) ? { plmn: { mcc: pdp.mcc, mnc: pdp.mnc } } : {}),
      ...(pdp.apn && pdp.apn.length <= 100 ? { apn: pdp.apn } : {}),
      ...(address?.version === 4 ? { ipv4: address.value } : address?.version === 6 ? { ipv6: address.value } : {}),
      ...(imei === undefined ? {} : { imei }),
    },
  };
}

/** The session's RAT as a TS 29.571 name; a PDP context of an unknown RAT is still cellular. */
function bearerOf(pdp: PdpContext): { bearer: Bearer; rat?: string } {
  const code = typeof pdp.rat_type === "string" && /^\d+$/.test(pdp.rat_type) ? Number(pdp.rat_type) : pdp.rat_type;
  const rat = typeof code === "number" ? ratTypeNames[code] : undefined;
  return rat === undefined ? { bearer: "cellular" } : { bearer: bearerOfRat(rat), rat };
}

function unhandled(record: EventRecord, sourceType: string): Fact {
  const summary = {
    eventTypeId: record.event_type.id,
    ...(record.description ? { description: record.description.slice(0, 500) } : {}),
    ...(record.event_source?.description ? { eventSource: record.event_source.description } : {}),
  };
  return { type: "source.unhandled", data: { sourceType, summary } };
}

/** The identifiers a record carries that are not identifiers, each with why. */
function malformedIdentifiers(record: EventRecord): FieldIssue[] {
  const given: [string, string | null | undefined, string][] = [
    ["sim.iccid", record.sim?.iccid, "an ICCID is 18 to 20 digits"],
    ["imsi.imsi", record.imsi?.imsi, "an IMSI is 6 to 15 digits"],
    ["sim.msisdn", record.sim?.msisdn, "an MSISDN is 6 to 15 digits"],
    ["endpoint.imei", record.endpoint?.imei, "an IMEI is 15 digits (14 without its check digit, 16 as an IMEISV)"],
    ["endpoint.ip_address", record.endpoint?.ip_address, "an IP address"],
  ];
  return given.flatMap(([path, value, message]) => (value ? [{ path, message: `must be ${message}` }] : []));
}

function deviceOf(record: EventRecord): DeviceRef {
  const iccid = record.sim?.iccid;
  const imsi = record.imsi?.imsi;
  const msisdn = record.sim?.msisdn;
  const imei = imeiOf(record.endpoint?.imei);
  const ip = ipAddress(record.endpoint?.ip_address);
  return {
    ...(iccid && /^\d{18,20}F?$/.test(iccid) ? { iccid } : {}),
    ...(imsi && /^\d{6,15}$/.test(imsi) ? { imsi } : {}),
    ...(imei === undefined ? {} : { imei }),
    ...(msisdn && /^\+?\d{6,15}$/.test(msisdn) ? { msisdn } : {}),
    ...(ip === undefined ? {} : { ip: ip.value }),
  };
}

/**
 * The 15-digit IMEI from what operators report as equipment identity: an IMEI (15 digits,
 * Luhn check digit last), one as the network carries it (TAC, serial number and the spare digit,
 * zero), an IMEISV (16: TAC, serial number, 2-digit software version) or an IMEI without its check
 * digit (14). TS 23.003 §6.2: the check digit is the Luhn digit over TAC + SNR, computed, not
 * transmitted ("Spare digit: this digit shall be zero, when transmitted by the MS"), so it is
 * recomputed from the first 14 digits, whatever the 15th digit says. Anything else yields nothing.
 */
export function imeiOf(reported: string | null | undefined): string | undefined {
  if (!reported || !/^\d{14,16}$/.test(reported)) return undefined;
  // The equipment is its TAC and serial number (14 digits), whatever the 15th says: the check digit, the spare 0
  // (review 119: dropped, and an IMEI lock never saw the SIM move), or a digit the equipment chose, which is its own
  // unauthenticated claim (review 123: dropped, the other equipment hid from the lock).
  return withLuhnDigit(reported.slice(0, 14));
}

function ipAddress(value: string | null | undefined): { version: 4 | 6; value: string } | undefined {
  if (!value) return undefined;
  if (z.ipv4().safeParse(value).success) return { version: 4, value };
  if (z.ipv6().safeParse(value).success) return { version: 6, value };
  return undefined;
}

/** emnify writes offsets as `+0000`, 1NCE as `Z`: both become a UTC ISO string. */
function isoInstant(value: string): string | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:?\d{2})$/.exec(value);
  if (!match) return undefined;
  const offset = match[2] === "Z" ? "Z" : `${match[2]!.slice(0, 3)}:${match[2]!.slice(-2)}`;
  const instant = new Date(`${match[1]}${offset}`);
  return Number.isNaN(instant.getTime()) ? undefined : instant.toISOString();
}

function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const encoded = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header ?? "")?.[1];
  if (encoded === undefined) return undefined;
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon === -1 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

const invalidBody = invalidBodyOf("data streamer body");
