/**
 * Format `camara`: GSMA Open Gateway / CAMARA subscription notifications. Each is a CloudEvents
 * 1.0 structured event (`application/cloudevents+json`); a JSON array is taken as a batch.
 * Authentication: `Authorization: Bearer <token>`, the access token given to the API provider
 * as the subscription's `sinkCredential` (credentialType ACCESSTOKEN).
 *
 * Event types are `org.camaraproject.<api>.v<N>.<name>`; the version and the API part vary
 * between releases (e.g. `iot-sim-fraud-prevention` vs `iot-sim-fraud-prevention-subscriptions`),
 * so the mapping keys on the event name alone. Payloads per the camaraproject API definitions:
 * DeviceRoamingStatus `device-roaming-status-subscriptions.yaml`, DeviceStatus
 * `device-reachability-status-subscriptions.yaml`, ConnectedNetworkType
 * `connected-network-type-subscriptions.yaml`, SimSwap `sim-swap-subscriptions.yaml`,
 * IoTSIMFraudPrevention `iot-sim-fraud-prevention-subscriptions.yaml`.
 *
 * `id` is unique per `source` (CloudEvents), so `${source}|${id}` keys redeliveries. Events we
 * do not act on become `source.unhandled`: a well-formed CloudEvent is never refused. One that
 * names no device (subscription lifecycle events, three-legged subscriptions where the token
 * implies the device) has nothing to attribute and yields an accepted item without events.
 */
import * as z from "zod";
import { timestampSchema, type DeviceRef, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import { countryOfMcc } from "../../catalogue/mcc.ts";
import type { FieldIssue } from "../../error.ts";
import type { Adapter, AdapterItem } from "../adapter.ts";
import { authenticateBearerToken } from "./auth.ts";
import { invalidBodyOf, isRecord } from "./body.ts";
import { cloudEventsMediaTypes, cloudEventsOf } from "./cloudevents.ts";
import { checkedItem, pick, refused, zodIssues, type Fact, type Refusal } from "./items.ts";

export const camaraAdapter: Adapter = {
  format: "camara",
  mediaTypes: cloudEventsMediaTypes,

  authenticate: authenticateBearerToken,

  parse(request) {
    return cloudEventsOf(request, invalidBody, "the body must be a CloudEvent object or an array of them").map((raw, index) =>
      cloudEventItem(raw, index, request.now),
    );
  },
};

/** `id` and `source` key redeliveries together (a dedupe key takes 512), `type` is kept as the source type (200). */
const attribute = (name: string, max: number) =>
  z
    .string({
      error: (issue) => (issue.input === undefined ? `the required CloudEvents attribute ${name} is missing` : `${name} must be a string`),
    })
    .min(1, `${name} must not be empty`)
    .max(max, `${name} must be at most ${max} characters`);

/** CloudEvents 1.0 required context attributes, plus the optional `time` and `data`. */
const cloudEventSchema = z.object({
  specversion: z.literal("1.0", {
    error: (issue) =>
      issue.input === undefined
        ? "the required CloudEvents attribute specversion is missing"
        : "only CloudEvents specversion 1.0 is accepted",
  }),
  id: attribute("id", 255),
  source: attribute("source", 255),
  type: attribute("type", 200),
  time: timestampSchema.optional(),
  data: z.unknown().optional(),
});
type CloudEvent = z.output<typeof cloudEventSchema>;

const typePattern = /^org\.camaraproject\.([a-z0-9-]+)\.v\d+\.([a-z0-9-]+)$/;

function cloudEventItem(raw: unknown, index: number, now: Date): AdapterItem {
  const parsed = cloudEventSchema.safeParse(raw);
  if (!parsed.success) return refused(index, zodIssues(parsed.error));
  const event = parsed.data;
  const data = isRecord(event.data) ? event.data : {};
  const device = deviceOf(data);
  if ("issues" in device) return refused(index, device.issues);
  if (!device.ref) return { index, ok: true, events: [] };
  const fact = factOf(eventName(event.type), event, data);
  if ("issues" in fact) return refused(index, fact.issues);
  const normalized = {
    dedupeKey: `${event.source}|${event.id}`,
    occurredAt: event.time ?? now.toISOString(),
    // No time stated: a redelivery is received at another time, and must still read as the same fact (review 129).
    ...(event.time === undefined ? { timeChosen: true } : {}),
    device: device.ref,
    sourceType: event.type,
    ...fact,
  } as NormalizedEvent;
  return checkedItem(index, [normalized]);
}

function eventName(type: string): string | undefined {
  return typePattern.exec(type)?.[2];
}

/** What the event says, by its name; anything not acted on is recorded as unhandled. */
function factOf(name: string | undefined, event: CloudEvent, data: Record<string, unknown>): Fact | Refusal {
  switch (name) {
    case "roaming-status": {
      if (typeof data["roaming"] !== "boolean")
        return { issues: [{ path: "data.roaming", message: "a roaming-status event needs the roaming boolean" }] };
      return roamingFact(data["roaming"], data);
    }
    case "roaming-on":
    case "roaming-change-country":
      return roamingFact(true, data);
    case "roaming-off":
      return { type: "device.roaming-changed", data: { roaming: false } };
    case "reachability-data":
      return { type: "device.reachability-changed", data: { reachable: true, via: "data" } };
    case "reachability-sms":
      return { type: "device.reachability-changed", data: { reachable: true, via: "sms" } };
    case "reachability-disconnected":
      return { type: "device.reachability-changed", data: { reachable: false } };
    case "swapped":
      // A SIM swap moves the phone number to a new SIM card: the SIM that was enrolled as this
      // device's root of trust no longer holds its subscription, and whoever holds the new SIM
      // now receives the number. That is not an equipment (IMEI) change, and nothing says the
      // new SIM belongs to the fleet, so the device is suspended (reversible, unlike revocation)
      // until someone confirms the swap was legitimate.
      return { type: "device.suspended", data: { reason: "sim swap reported by operator" } };
    case "imei-change":
      return imeiChangeFact(data);
    case "network-type-changed":
      // 2G/3G/4G/5G says nothing about which bearer (public, private, satellite) carries the
      // device, so it changes no session: recorded only.
      return unhandled(event, pick(data, ["connectedNetworkType", "subscriptionId"]));
    case "area-change":
      return unhandled(event, pick(data, ["area", "subscriptionId"]));
    case "subscription-started":
    case "subscription-updated":
    case "subscription-ended":
    case "subscription-ends":
      return unhandled(
        event,
        pick(data, [
          "subscriptionId",
          "initiationReason",
          "updateReason",
          "terminationReason",
          "terminationDescription",
          "initiationDescription",
          "updateDescription",
        ]),
      );
    default:
      return unhandled(event, pick(data, ["subscriptionId"]));
  }
}

const countryCodeSchema = z.union([z.number().int().min(0).max(999), z.string().regex(/^\d{1,3}$/)]);

/** `countryCode` is the visited network's MCC as an integer (CAMARA CountryCode); `countryName` its ISO codes. */
function roamingFact(roaming: boolean, data: Record<string, unknown>): Fact | Refusal {
  if (!roaming || data["countryCode"] === undefined) return { type: "device.roaming-changed", data: { roaming } };
  const countryCode = countryCodeSchema.safeParse(data["countryCode"]);
  if (!countryCode.success)
    return { issues: [{ path: "data.countryCode", message: "countryCode must be a mobile country code (an integer up to 999)" }] };
  const mcc = String(countryCode.data).padStart(3, "0");
  const country = countryOfMcc(mcc) ?? soleCountryName(data["countryName"]);
  return { type: "device.roaming-changed", data: { roaming, mcc, ...(country === undefined ? {} : { country }) } };
}

/** CAMARA lists every ISO country an MCC maps to; only a single one names the country. */
function soleCountryName(countryName: unknown): string | undefined {
  if (!Array.isArray(countryName) || countryName.length !== 1) return undefined;
  const [name] = countryName;
  return typeof name === "string" && /^[A-Z]{2}$/.test(name) ? name : undefined;
}

/** IMEIs come formatted (`35-209900-176148-1` in the spec's example): only the digits count. */
function imeiChangeFact(data: Record<string, unknown>): Fact | Refusal {
  const imei = imeiDigits(data["imei"]);
  if (imei === undefined) return { issues: [{ path: "data.imei", message: "an imei-change event needs the new IMEI (14 to 16 digits)" }] };
  // Not in the CAMARA schema, which carries only the new IMEI; read when a provider adds it.
  const previousImei = imeiDigits(data["previousImei"]);
  return { type: "device.equipment-changed", data: { imei, ...(previousImei === undefined ? {} : { previousImei }) } };
}

function imeiDigits(value: unknown): string | undefined {
  if (typeof value !== "string" || !/^[\d\s-]+$/.test(value)) return undefined;
  const digits = value.replace(/\D/g, "");
  return /^\d{14,16}$/.test(digits) ? digits : undefined;
}

function unhandled(event: CloudEvent, summary: Record<string, unknown>): Fact {
  return { type: "source.unhandled", data: { sourceType: event.type, ...(Object.keys(summary).length > 0 ? { summary } : {}) } };
}

// --- the device ----------------------------------------------------------------------------

/** CAMARA `Device`: at least one of these; the IPv4 form carries the public (NAT) and/or private address. */
const deviceSchema = z.object({
  phoneNumber: z
    .string()
    .regex(/^\+?\d{6,15}$/, "phoneNumber must be an E.164 number")
    .optional(),
  networkAccessIdentifier: z.string().min(1).max(253).optional(),
  ipv4Address: z
    .object({
      publicAddress: z.ipv4().optional(),
      privateAddress: z.ipv4().optional(),
      publicPort: z.number().int().min(0).max(65535).optional(),
    })
    .optional(),
  ipv6Address: z.ipv6().optional(),
});

/**
 * `data.device` (most APIs) or `data.phoneNumber` (sim-swap). The address inside the tenant's
 * APN is the private one; the public address is only used when no private one is given.
 */
function deviceOf(data: Record<string, unknown>): { ref: DeviceRef | undefined } | Refusal {
  if (data["device"] === undefined && typeof data["phoneNumber"] === "string") {
    const phoneNumber = deviceSchema.shape.phoneNumber.safeParse(data["phoneNumber"]);
    return phoneNumber.success
      ? { ref: { msisdn: phoneNumber.data } }
      : { issues: prefixed("data.phoneNumber", zodIssues(phoneNumber.error)) };
  }
  if (data["device"] === undefined) return { ref: undefined };
  const parsed = deviceSchema.safeParse(data["device"]);
  if (!parsed.success) return { issues: prefixed("data.device", zodIssues(parsed.error)) };
  const { phoneNumber, networkAccessIdentifier, ipv4Address, ipv6Address } = parsed.data;
  const ip = ipv4Address?.privateAddress ?? ipv4Address?.publicAddress ?? ipv6Address;
  const ref: DeviceRef = {
    ...(phoneNumber === undefined ? {} : { msisdn: phoneNumber }),
    // CAMARA_common's NetworkAccessIdentifier is "the GPSI formatted with the External Identifier ({Local
    // Identifier}@{Domain Identifier})": a device's `externalId`, not an EAP NAI carrying an IMSI (review 119: every
    // event naming a device this way was parked).
    ...(networkAccessIdentifier === undefined ? {} : { externalId: networkAccessIdentifier }),
    ...(ip === undefined ? {} : { ip }),
  };
  return { ref: Object.keys(ref).length > 0 ? ref : undefined };
}

// --- shared --------------------------------------------------------------------------------

const invalidBody = invalidBodyOf("CAMARA body");

/** One structured CloudEvent, or a JSON array of them (batch). */
function prefixed(prefix: string, issues: FieldIssue[]): FieldIssue[] {
  return issues.map((issue) => ({ path: issue.path ? `${prefix}.${issue.path}` : prefix, message: issue.message }));
}
