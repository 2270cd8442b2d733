import * as z from "zod";
import { credentialPemSchema, fingerprintSchema } from "./credential.ts";
import { eidSchema, externalIdSchema, iccidOtherSpelling, iccidSchema, imeiSchema, imsiSchema, msisdnSchema } from "./identifiers.ts";
import { countriesSchema, deviceStates, identityStateSchema } from "../identity/identity-state.ts";

export { deviceStates, type DeviceState } from "../identity/identity-state.ts";

/** A label key: lower-case, 1-63 characters (what devices carry, and so all a selector can name). */
export const labelKeySchema = z.string().regex(/^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/, "label keys are lower-case, 1-63 characters");

/**
 * A record keyed by label keys that refuses a `__proto__` key: zod's record skips that one unchecked (assigned, it would
 * replace the result's prototype), so a selector on it selected every device (review 122).
 */
export const labelRecord = <Value extends z.ZodType>(value: Value, key: z.ZodString = labelKeySchema) =>
  z.preprocess(
    (input, ctx) => {
      if (input !== null && typeof input === "object" && Object.hasOwn(input, "__proto__"))
        ctx.issues.push({ code: "custom", message: "label keys are lower-case, 1-63 characters", path: ["__proto__"], input });
      return input;
    },
    z.record(key, value),
  );

export const labelsSchema = labelRecord(z.string().max(63, "label values are at most 63 characters"))
  .refine((labels) => Object.keys(labels).length <= 64, "at most 64 labels")
  .meta({ description: "labels that policies select devices by", example: { fleet: "meters", site: "lyon" } });

export const registerDeviceInput = z
  .strictObject({
    name: z.string().min(1).max(128).optional(),
    eid: eidSchema.optional(),
    iccids: z.array(iccidSchema).max(16).meta({ uniqueItems: true }).optional(),
    imsi: imsiSchema.optional(),
    imei: imeiSchema.optional(),
    msisdn: msisdnSchema.optional(),
    externalId: externalIdSchema.optional(),
    labels: labelsSchema.optional(),
    imeiLock: z.boolean().optional().meta({ description: "quarantine the device when its IMEI changes; defaults to the tenant setting" }),
    allowedCountries: countriesSchema
      .optional()
      .meta({ description: "countries this device may roam into; defaults to the tenant's country rules, then its allowedCountries" }),
    credential: credentialPemSchema.optional(),
  })
  .refine((input) => input.eid || input.imsi || (input.iccids?.length ?? 0) > 0, {
    message: "a device needs a SIM identity: eid, iccids or imsi",
    path: ["eid"],
  })
  .refine((input) => new Set(input.iccids ?? []).size === (input.iccids ?? []).length, {
    message: "iccids must be distinct",
    path: ["iccids"],
  })
  // One SIM spelled with and without its check digit is one ICCID (review 120: the registration's transaction then
  // named one alias item twice, which DynamoDB refuses).
  .refine((input) => !(input.iccids ?? []).some((iccid) => input.iccids!.includes(iccidOtherSpelling(iccid) ?? "")), {
    message: "iccids must name distinct SIMs: an ICCID with and without its check digit is one",
    path: ["iccids"],
  })
  // The refinements above, as JSON Schema states them (a generated client or validator sees what the server checks).
  .meta({
    anyOf: [{ required: ["eid"] }, { required: ["imsi"] }, { required: ["iccids"], properties: { iccids: { minItems: 1 } } }],
  });

export type RegisterDeviceInput = z.output<typeof registerDeviceInput>;

export const deviceSchema = z
  .object({
    id: z.string().meta({ example: "dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }),
    tenantId: z.string(),
    name: z.string().optional(),
    state: z.enum(deviceStates),
    eid: z.string().optional(),
    iccids: z.array(z.string()),
    imsi: z.string().optional(),
    imei: z.string().optional(),
    msisdn: z.string().optional(),
    externalId: z.string().optional(),
    labels: z.record(z.string(), z.string()),
    imeiLock: z.boolean().optional(),
    allowedCountries: countriesSchema.optional(),
    credentialFingerprint: fingerprintSchema.optional(),
    /** What operator events decided: lifecycle, sessions per bearer, roaming, reachability, eUICC profiles. */
    identity: identityStateSchema,
    createdAt: z.string(),
    updatedAt: z.string(),
    /** Increases with every change; the HTTP ETag. */
    revision: z.number().int(),
  })
  .meta({ id: "Device" });

export type Device = z.output<typeof deviceSchema>;

/** Every (kind, value) identifier the device holds, each of which must be unique in its tenant. */
export function deviceIdentifiers(
  device: Pick<Device, "eid" | "iccids" | "imsi" | "imei" | "msisdn" | "externalId"> & { credentialFingerprint?: string },
) {
  return [
    ...(device.eid ? [{ kind: "eid" as const, value: device.eid }] : []),
    ...device.iccids.map((value) => ({ kind: "iccid" as const, value })),
    ...(device.imsi ? [{ kind: "imsi" as const, value: device.imsi }] : []),
    ...(device.imei ? [{ kind: "imei" as const, value: device.imei }] : []),
    ...(device.msisdn ? [{ kind: "msisdn" as const, value: device.msisdn }] : []),
    ...(device.externalId ? [{ kind: "externalId" as const, value: device.externalId }] : []),
    ...(device.credentialFingerprint ? [{ kind: "credential" as const, value: device.credentialFingerprint }] : []),
  ];
}

/** The fields of a device its enforcement view is made of (and the identity table's `byTenant` index copies). */
export const enforcementFields = ["id", "state", "labels", "imsi", "eid", "credentialFingerprint"] as const;

/**
 * What an enforcement point needs of a device: who it is, its state and labels. Not its revision, which every fact
 * moves: the view changes only when what a PEP decides on does, and the `byTenant` index copy of the device (which the
 * snapshot lists) is not rewritten by a fact that changes nothing in it (a write that changes no attribute an index
 * copies does not write the index).
 */
export const enforcementView = (device: Pick<Device, (typeof enforcementFields)[number]>) => ({
  id: device.id,
  state: device.state,
  labels: device.labels,
  imsi: device.imsi,
  eid: device.eid,
  credentialFingerprint: device.credentialFingerprint,
});

/** The enforcement view of a device item as the `byTenant` index copies it. */
export const enforcementViewSchema = deviceSchema.pick({
  id: true,
  state: true,
  labels: true,
  imsi: true,
  eid: true,
  credentialFingerprint: true,
});
