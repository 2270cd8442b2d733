/**
 * Format `supersim`: Twilio (now KORE) Super SIM Connection Events, delivered by an Event
 * Streams webhook sink as a JSON array of CloudEvents (Twilio "Super SIM Connection Events on
 * Event Streams"; schema in Twilio "Event types > Super SIM", v2: sim_iccid, sim_sid, imsi, imei,
 * ip_address, apn, rat_type, network {mcc, mnc, friendly_name, iso_country, sid}, error
 * {code, message}, timestamp, data_session_* ...). Delivery is at least once and unordered:
 * `${source}|${id}` keys duplicates, `data.timestamp` orders.
 *
 * Types are matched on their suffix (`*.supersim.connection.<event>`), as KORE documents them:
 * attachment.accepted -> device.reachability-changed (registered, so reachable);
 * attachment.rejected/failed -> source.unhandled (the error is kept in the summary);
 * data-session.started -> sim.attached; data-session.updated -> bearer.switched when it reports
 * the RAT or network (the applier compares with what it knows), else source.unhandled;
 * data-session.ended/failed -> sim.detached.
 *
 * Authentication, Twilio "Webhooks security" and twilio-node `validateRequestWithBody`: for a
 * JSON body Twilio appends `bodySHA256` (hex SHA-256 of the raw body) to the URL and sends
 * `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, full URL)), with no parameters appended.
 * Both the hash and the signature must match; like the SDK, the URL is tried with and without
 * the default port.
 */
import { createHash, createHmac } from "node:crypto";
import * as z from "zod";
import {
  canonicalIp,
  maxTimestampLength,
  timestampSchema,
  type Bearer,
  type DeviceRef,
  type NormalizedEvent,
} from "../../catalogue/catalogue.ts";
import { bearerOfRat } from "../../catalogue/rat.ts";
import { idempotencyRetentionSeconds } from "../../store/idempotency.ts";
import type { Adapter, AdapterItem } from "../adapter.ts";
import { sameSecret, unauthenticated } from "./auth.ts";
import { invalidBodyOf } from "./body.ts";
import { cloudEventsMediaTypes, cloudEventsOf } from "./cloudevents.ts";
import { imeiOf } from "./datastreamer.ts";
import { checkedItem, refused, zodIssues, type Fact } from "./items.ts";

export const supersimAdapter: Adapter = {
  format: "supersim",
  mediaTypes: cloudEventsMediaTypes,

  authenticate(request, { twilioAuthToken, twilioSharedKeySecret }) {
    const signature = request.headers["x-twilio-signature"];
    const url = parsedUrl(request.url);
    const bodyHash = url?.searchParams.get("bodySHA256");
    // A SharedKey webhook names its algorithm (HMAC_SHA1 or HMAC_SHA256) in the settings header.
    const settings = request.headers["x-twilio-webhooks-signature-settings"];
    const algorithm = /(?:^|,)\s*algorithm=([^,\s]+)/.exec(settings ?? "")?.[1]?.toUpperCase() ?? "HMAC_SHA1";
    const hash = ({ HMAC_SHA1: "sha1", HMAC_SHA256: "sha256" } as const)[algorithm as "HMAC_SHA1"];
    const secret = settings === undefined ? twilioAuthToken : (twilioSharedKeySecret ?? twilioAuthToken);
    if (!secret || !signature || !url || !bodyHash || !hash) {
      throw unauthenticated("Missing X-Twilio-Signature, bodySHA256 URL parameter, a supported algorithm or configured auth token");
    }
    const bytes = request.bytes ?? Buffer.from(request.body, "utf8");
    const bodyMatches = sameSecret(bodyHash, createHash("sha256").update(bytes).digest("hex"));
    const urlMatches = signedUrlForms(url).some((form) =>
      sameSecret(signature, createHmac(hash, secret).update(form, "utf8").digest("base64")),
    );
    if (!bodyMatches || !urlMatches) throw unauthenticated("Invalid X-Twilio-Signature or body hash");
  },

  parse(request) {
    return cloudEventsOf(request, invalidBody, "the body must be an array of CloudEvents").map((raw, index) =>
      itemOf(raw, index, request.now),
    );
  },
};

const text = z.string().nullish();

const connectionEventSchema = z.object({
  id: z.string().min(1).max(255),
  source: z.string().min(1).max(255),
  type: z.string().min(1).max(200),
  time: text,
  data: z.object({
    sim_iccid: text,
    imsi: text,
    imei: text,
    ip_address: text,
    apn: text,
    rat_type: text,
    timestamp: text,
    network: z.object({ mcc: text, mnc: text, friendly_name: text, iso_country: text }).nullish(),
    error: z.object({ code: z.number().nullish(), message: text }).nullish(),
  }),
});
type ConnectionEvent = z.output<typeof connectionEventSchema>;

const connectionEventName = /\.supersim\.connection\.((?:attachment|data-session)\.[a-z-]+)$/;

/** Super SIM `rat_type` is prose ("4G LTE", "LTE Cat-M", "NB-IoT", ...): first match wins. */
const ratPatterns: readonly [RegExp, string][] = [
  [/nb-?iot/i, "NBIOT"],
  [/cat[- ]?m|lte-m/i, "LTE-M"],
  [/\b5g\b|\bnr\b/i, "NR"],
  [/\b4g\b|lte/i, "EUTRA"],
  [/\b3g\b|umts|wcdma|hspa/i, "UTRA"],
  [/\b2g\b|gsm|gprs|edge/i, "GERA"],
];

/**
 * The oldest event taken: Twilio signs no time, so a captured request verifies for ever. Ingestion answers a signed body
 * once per source for 24 hours (`ingest.ts`, the idempotency records): a replay within them gets the first answer, and
 * after them its events are refused as older than 20 hours (review 89). The 4 hours between leave room for a delivery
 * Event Streams retried for its 4 hours, and bound how far ahead of our clock an event may be stamped: one stamped
 * further ahead would still be under 20 hours old when replayed once its answer is forgotten, so it is refused. What
 * that leaves (review 93): a request refused for such an event leaves no answer to give again, so its replay once the
 * event's time has come within 4 hours of the clock (up to 20 hours after that time) is taken. It needs Twilio to have
 * signed an event stamped over 4 hours ahead of this clock.
 */
export const supersimMaxEventAgeHours = 20;
export const supersimMaxEventLeadHours = idempotencyRetentionSeconds / 3600 - supersimMaxEventAgeHours;

function itemOf(raw: unknown, index: number, now: Date): AdapterItem {
  const parsed = connectionEventSchema.safeParse(raw);
  if (!parsed.success) return refused(index, zodIssues(parsed.error));
  const event = parsed.data;
  const occurredAt = [event.data.timestamp, event.time].find((value) => value && timestampSchema.safeParse(value).success);
  if (!occurredAt) {
    const message = `must be an ISO 8601 date-time of at most ${maxTimestampLength} characters (or \`time\` must be)`;
    return refused(index, [{ path: "data.timestamp", message }]);
  }
  if (Date.parse(occurredAt) < now.getTime() - supersimMaxEventAgeHours * 3_600_000) {
    const message = `${occurredAt} is more than ${supersimMaxEventAgeHours} hours ago (Twilio signs no time: a replay is refused)`;
    return refused(index, [{ path: "time", message }]);
  }
  if (Date.parse(occurredAt) > now.getTime() + supersimMaxEventLeadHours * 3_600_000) {
    const message = `${occurredAt} is more than ${supersimMaxEventLeadHours} hours ahead (Twilio signs no time: a replay is refused)`;
    return refused(index, [{ path: "time", message }]);
  }
  const device = deviceOf(event);
  if (Object.keys(device).length === 0)
    return refused(index, [{ path: "data.sim_iccid", message: "the event names no ICCID, IMSI, IMEI or IP address" }]);
  const normalized = {
    dedupeKey: `${event.source}|${event.id}`,
    occurredAt,
    device,
    sourceType: event.type,
    ...factOf(event),
  } as NormalizedEvent;
  return checkedItem(index, [normalized]);
}

function factOf(event: ConnectionEvent): Fact {
  const { data } = event;
  switch (connectionEventName.exec(event.type)?.[1]) {
    case "attachment.accepted":
      return { type: "device.reachability-changed", data: { reachable: true } };
    case "data-session.started": {
      const imei = imeiOf(data.imei);
      return { type: "sim.attached", data: { ...sessionOf(event), ...(imei === undefined ? {} : { imei }) } };
    }
    case "data-session.updated":
      return data.rat_type || plmnOf(event) ? { type: "bearer.switched", data: sessionOf(event) } : unhandled(event);
    case "data-session.ended":
      return { type: "sim.detached", data: { bearer: bearerOf(data.rat_type).bearer } };
    case "data-session.failed":
      return {
        type: "sim.detached",
        data: { bearer: bearerOf(data.rat_type).bearer, reason: (data.error?.message ?? "data session failed").slice(0, 500) },
      };
    default:
      return unhandled(event);
  }
}

function sessionOf(event: ConnectionEvent) {
  const { apn, ip_address } = event.data;
  const plmn = plmnOf(event);
  const ipv4 = ip_address && z.ipv4().safeParse(ip_address).success ? ip_address : undefined;
  // An IPv6 session's address (it was dropped: the session had no address, and the feed no binding).
  const ipv6 = ip_address && ipv4 === undefined && z.ipv6().safeParse(ip_address).success ? canonicalIp(ip_address) : undefined;
  return {
    ...bearerOf(event.data.rat_type),
    ...(plmn === undefined ? {} : { plmn }),
    ...(apn && apn.length <= 100 ? { apn } : {}),
    ...(ipv4 === undefined ? {} : { ipv4 }),
    ...(ipv6 === undefined ? {} : { ipv6 }),
  };
}

function bearerOf(ratType: string | null | undefined): { bearer: Bearer; rat?: string } {
  const rat = ratType ? ratPatterns.find(([pattern]) => pattern.test(ratType))?.[1] : undefined;
  return rat === undefined ? { bearer: "cellular" } : { bearer: bearerOfRat(rat), rat };
}

function plmnOf({ data }: ConnectionEvent): { mcc: string; mnc: string } | undefined {
  const mcc = data.network?.mcc;
  const mnc = data.network?.mnc;
  return mcc && mnc && /^\d{3}$/.test(mcc) && /^\d{2,3}$/.test(mnc) ? { mcc, mnc } : undefined;
}

function unhandled(event: ConnectionEvent): Fact {
  const { error, network, rat_type } = event.data;
  const summary = {
    ...(error ? { error: { code: error.code ?? null, message: error.message ?? null } } : {}),
    ...(network ? { network: { mcc: network.mcc ?? null, mnc: network.mnc ?? null, name: network.friendly_name ?? null } } : {}),
    ...(rat_type ? { ratType: rat_type } : {}),
  };
  return { type: "source.unhandled", data: { sourceType: event.type, summary } };
}

function deviceOf({ data }: ConnectionEvent): DeviceRef {
  const imei = imeiOf(data.imei);
  const ip =
    data.ip_address && (z.ipv4().safeParse(data.ip_address).success || z.ipv6().safeParse(data.ip_address).success)
      ? data.ip_address
      : undefined;
  return {
    ...(data.sim_iccid && /^\d{18,20}F?$/.test(data.sim_iccid) ? { iccid: data.sim_iccid } : {}),
    ...(data.imsi && /^\d{6,15}$/.test(data.imsi) ? { imsi: data.imsi } : {}),
    ...(imei === undefined ? {} : { imei }),
    ...(ip === undefined ? {} : { ip }),
  };
}

/** The URL as signed, with and without the scheme's default port (twilio-node tries both). */
function signedUrlForms(url: URL): string[] {
  const withoutPort = new URL(url);
  withoutPort.port = "";
  if (url.port !== "") return [url.toString(), withoutPort.toString()];
  const defaultPort = url.protocol === "https:" ? "443" : "80";
  const userInfo = url.username || url.password ? `${url.username}${url.password ? `:${url.password}` : ""}@` : "";
  return [withoutPort.toString(), `${url.protocol}//${userInfo}${url.hostname}:${defaultPort}${url.pathname}${url.search}${url.hash}`];
}

function parsedUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

const invalidBody = invalidBodyOf("Super SIM body");
