/**
 * The normalized event catalogue: every fact operator cores and eSIM managers report,
 * whatever their wire format, becomes one of these. Ingestion adapters emit them; the
 * applier turns them into identity state; the same shapes leave the system as the
 * `simroot` changes automation consumes. Exported as JSON Schema and AsyncAPI 3.
 */
import * as z from "zod";
import { canonicalIp } from "./ip.ts";

export const bearers = ["cellular", "private-5g", "wifi", "satellite"] as const;
export const bearerSchema = z.enum(bearers).meta({
  description: "how the device reaches the network: public cellular, private LTE/5G, Wi-Fi via EAP-SIM/AKA, satellite NTN",
});
export type Bearer = z.output<typeof bearerSchema>;

const digits = (min: number, max: number) => z.string().regex(new RegExp(`^\\d{${min},${max}}$`));

/**
 * The longest time a sender may state: RFC 3339 with nanoseconds and an offset, `2026-03-01T11:59:30.123456789+01:00`.
 * RFC 3339 bounds no fraction of a second, but none finer than nanoseconds is emitted (Go's RFC3339Nano, java.time;
 * .NET writes 7 digits, JavaScript and Python 3 or 6). Unbounded, one `occurredAt` of 60,000 digits was accepted into
 * the fact, its audit record and the feed (review 83).
 */
export const maxTimestampLength = 35;

/** A time a sender states, RFC 3339 with an offset, at most `maxTimestampLength` characters. */
export const timestampSchema = /* @__PURE__ */ (() =>
  z.iso
    .datetime({ offset: true, error: "must be an RFC 3339 date-time with an offset" })
    .max(maxTimestampLength, `must be at most ${maxTimestampLength} characters (a fraction of a second to nanoseconds)`))();

/** simroot's device ids are 30 characters (`dev_` and a ULID). */
export const maxDeviceIdLength = 64;

export { canonicalIp };

export const ipv6Schema = /* @__PURE__ */ (() =>
  z
    .ipv6()
    .refine((address) => canonicalIp(address).includes(":"), "an IPv4-mapped address is an IPv4 address: send it as ipv4")
    .overwrite(canonicalIp))();

/** How the source identified the device; the applier resolves it to one device. */
export const deviceRefSchema = z
  .object({
    deviceId: z.string().max(maxDeviceIdLength).optional(),
    eid: digits(32, 32).optional(),
    iccid: z
      .string()
      .regex(/^\d{18,20}F?$/)
      .optional(),
    imsi: digits(6, 15).optional(),
    imei: digits(14, 16).optional(),
    msisdn: z
      .string()
      .regex(/^\+?\d{6,15}$/)
      .optional(),
    /** EAP-SIM/AKA NAI or 5G SUPI/NAI forms: `0<IMSI>@wlan...`, `imsi-<digits>`. */
    nai: z.string().max(253).optional(),
    supi: z.string().max(253).optional(),
    /** The device's address inside the tenant's APN/DNN (CAMARA and NEF identify devices this way). */
    ip: z.string().max(64).overwrite(canonicalIp).optional(),
    externalId: z.string().max(253).optional(),
    /** SHA-256 of an IoT SAFE credential's SubjectPublicKeyInfo (hex), as a TLS terminator sees it. */
    credential: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/)
      .optional(),
  })
  .refine((ref) => Object.values(ref).some((value) => value !== undefined), "the event names no device identifier")
  .meta({ id: "DeviceRef" });
export type DeviceRef = z.output<typeof deviceRefSchema>;

export const plmnSchema = z.object({ mcc: digits(3, 3), mnc: digits(2, 3) }).meta({ id: "Plmn" });

const sessionFields = /* @__PURE__ */ (() => ({
  bearer: bearerSchema,
  /** 3GPP TS 29.571 RatType (NR, EUTRA, LTE-M, NB_IOT, WLAN, NR_LEO, ...). */
  rat: z.string().max(32).optional(),
  plmn: plmnSchema.optional(),
  apn: z.string().max(100).optional(),
  ipv4: z.ipv4().optional(),
  ipv6: ipv6Schema.optional(),
}))();

const reason = z.string().max(500).optional();

/**
 * The payload of each event type. Built by a call marked pure (as the schemas are at bundling, infra/esbuild-plugins.mjs),
 * so that a function that parses no event, the IoT authorizer say, leaves them out of its bundle and its cold start.
 */
export const eventPayloads = /* @__PURE__ */ (() => ({
  "sim.attached": z.object({ ...sessionFields, imei: digits(14, 16).optional() }),
  "sim.detached": z.object({ bearer: bearerSchema.optional(), reason }),
  "bearer.switched": z.object({ ...sessionFields, from: bearerSchema.optional() }),
  "profile.installed": z.object({
    eid: digits(32, 32),
    iccid: z.string().regex(/^\d{18,20}F?$/),
    result: z.enum(["success", "failure"]),
    reason,
    seqNumber: z.number().int().nonnegative().optional(),
  }),
  "profile.enabled": z.object({
    eid: digits(32, 32),
    iccid: z.string().regex(/^\d{18,20}F?$/),
    seqNumber: z.number().int().nonnegative().optional(),
    /** Why the eUICC switched, when the source says (SGP.32 fallback, SGP.22 device change, ...): the detectors flag `deviceChange` and `fallback`. */
    cause: z.string().max(64).optional(),
  }),
  "profile.disabled": z.object({
    eid: digits(32, 32),
    iccid: z.string().regex(/^\d{18,20}F?$/),
    seqNumber: z.number().int().nonnegative().optional(),
  }),
  "profile.deleted": z.object({
    eid: digits(32, 32),
    iccid: z.string().regex(/^\d{18,20}F?$/),
    seqNumber: z.number().int().nonnegative().optional(),
  }),
  "device.roaming-changed": z.object({
    roaming: z.boolean(),
    /** Mobile country code of the visited network. */
    mcc: digits(3, 3).optional(),
    /** ISO 3166-1 alpha-2, when known. */
    country: z
      .string()
      .regex(/^[A-Z]{2}$/)
      .optional(),
  }),
  /**
   * The SIM is in other equipment. `imei` is absent when the source reports only that the
   * IMSI-IMEI association changed (3GPP TS 29.122 CHANGE_OF_IMSI_IMEI_ASSOCIATION, `association`).
   */
  "device.equipment-changed": z.object({
    imei: digits(14, 16).optional(),
    previousImei: digits(14, 16).optional(),
    association: z.enum(["IMEI", "IMEISV"]).optional(),
  }),
  "device.revoked": z.object({ reason }),
  "device.suspended": z.object({ reason }),
  "device.quarantined": z.object({ reason }),
  "device.reinstated": z.object({ reason }),
  "device.reachability-changed": z.object({ reachable: z.boolean(), via: z.enum(["data", "sms"]).optional() }),
  /** A source event simroot does not act on: accepted and recorded, never rejected. */
  "source.unhandled": z.object({ sourceType: z.string().max(200), summary: z.record(z.string(), z.unknown()).optional() }),
}))();

export type CatalogueType = keyof typeof eventPayloads;
export const catalogueTypes = /* @__PURE__ */ Object.keys(eventPayloads) as CatalogueType[];
export type EventPayload<Type extends CatalogueType> = z.output<(typeof eventPayloads)[Type]>;

/**
 * One normalized event as an adapter emits it. `dedupeKey` is unique per source for one
 * real-world occurrence (CloudEvent source+id, emnify id, EID+seqNumber, ...): a redelivery
 * carries the same key. `occurredAt` orders events per device attribute.
 */
export type NormalizedEvent = {
  [Type in CatalogueType]: {
    readonly type: Type;
    readonly dedupeKey: string;
    readonly occurredAt: string;
    readonly device: DeviceRef;
    readonly data: EventPayload<Type>;
    /** Per-eUICC sequence (SGP.32 seqNumber) when the source has one. */
    readonly sequence?: number;
    /** The source's own event type, for the record. */
    readonly sourceType: string;
    /** What the sender stated as occurredAt when it lay too far in the future and was clamped to the receive time. */
    readonly reportedAt?: string;
    /**
     * True when the sender stated no time and simroot chose `occurredAt` (the receive time). Set by simroot's adapters
     * only: the schema below has no such field, so a `simroot` sender's is dropped. (A time stated too far ahead is
     * clamped, and the statement kept in `reportedAt`.)
     */
    readonly timeChosen?: true;
  };
}[CatalogueType];

const envelopeFields = /* @__PURE__ */ (() => ({
  dedupeKey: z.string().min(1).max(512),
  occurredAt: timestampSchema,
  device: deviceRefSchema,
  sequence: z.number().int().nonnegative().optional(),
  sourceType: z.string().max(200),
  reportedAt: z.string().max(64).optional(),
}))();

/** The schema of one normalized event of each type (a discriminated union on `type`). */
export const normalizedEventSchema = z
  .discriminatedUnion(
    "type",
    catalogueTypes.map((type) => z.object({ type: z.literal(type), ...envelopeFields, data: eventPayloads[type] })) as unknown as [
      z.ZodObject<{ type: z.ZodLiteral<CatalogueType> }>,
      ...z.ZodObject<{ type: z.ZodLiteral<CatalogueType> }>[],
    ],
  )
  .meta({ id: "NormalizedEvent" });
