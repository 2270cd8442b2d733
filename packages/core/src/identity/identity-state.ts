import * as z from "zod";
import { bearerSchema, plmnSchema, type Bearer } from "../catalogue/catalogue.ts";

/** ISO 3166-1 alpha-2 countries a device may roam into; empty means anywhere. */
export const countriesSchema = z.array(z.string().regex(/^[A-Z]{2}$/, "ISO 3166-1 alpha-2")).max(250);

/** A device's lifecycle: revoked is terminal. */
export const deviceStates = ["active", "suspended", "quarantined", "revoked"] as const;
export type DeviceState = (typeof deviceStates)[number];

export const sessionSchema = z
  .object({
    bearer: bearerSchema,
    rat: z.string().optional(),
    plmn: plmnSchema.optional(),
    country: z.string().optional(),
    apn: z.string().optional(),
    ipv4: z.string().optional(),
    ipv6: z.string().optional(),
    since: z.string(),
  })
  .meta({ id: "Session" });
export type Session = z.output<typeof sessionSchema>;

export const profileStates = ["installed", "enabled", "disabled", "deleted", "failed"] as const;
export const profileSchema = z
  .object({
    iccid: z.string(),
    eid: z.string(),
    state: z.enum(profileStates),
    seqNumber: z.number().int().optional(),
    reason: z.string().optional(),
    at: z.string(),
  })
  .meta({ id: "Profile" });
export type Profile = z.output<typeof profileSchema>;

/**
 * Profiles keyed by their ICCID without the F padding an eUICC may report, as the fold keys them since 2026-12-05: a
 * state folded before kept the ICCID as reported (review 63). Of two spellings of one profile, the later report stands.
 */
export function unpaddedProfiles(profiles: Readonly<Record<string, Profile>>): Record<string, Profile> {
  if (!Object.keys(profiles).some((iccid) => /F$/i.test(iccid))) return { ...profiles };
  // In the fold's order (fact.ts `bySequence`): an eIM's sequenced report after every unsequenced one, whatever the times.
  const later = (a: Profile, b: Profile) =>
    a.seqNumber !== undefined && b.seqNumber !== undefined
      ? a.seqNumber > b.seqNumber
      : a.seqNumber !== undefined || b.seqNumber !== undefined
        ? a.seqNumber !== undefined
        : a.at > b.at;
  const keyed: Record<string, Profile> = {};
  for (const profile of Object.values(profiles)) {
    const unpadded = { ...profile, iccid: profile.iccid.replace(/F$/i, "") };
    const kept = keyed[unpadded.iccid];
    if (!kept || later(unpadded, kept)) keyed[unpadded.iccid] = unpadded;
  }
  return keyed;
}

/**
 * Everything operator events decide about a device: lifecycle state, equipment binding,
 * sessions per bearer, roaming, reachability and eUICC profiles. A pure value: the fold
 * computes it from the device's facts.
 */
/** A suspension or quarantine, and who imposed it. */
const holdFields = {
  state: z.enum(["suspended", "quarantined"]),
  reason: z.string().optional(),
  at: z.string(),
  imei: z.string().optional().meta({ description: "the IMEI lock's hold: the equipment it was imposed for" }),
  spares: z.array(z.string()).optional().meta({
    description:
      "simroot's reinstatements that do not lift this hold: taken before the report that imposed it arrived, though dated after it",
  }),
};
const holdSchema = z.object({
  ...holdFields,
  behind: z.object(holdFields).optional().meta({
    description: "the hold this one replaced, which the reinstatements it `spares` do not lift: it stands when they lift this one",
  }),
});
export type Hold = z.output<typeof holdSchema>;

export const identityStateSchema = z
  .object({
    state: z.enum(deviceStates),
    stateReason: z.string().optional(),
    stateAt: z.string(),
    /**
     * The holds `state` derives from (absent when there is none): simroot's (an admin, an automation rule, the IMEI
     * lock) and each ingestion source's (`sources`, by source id). A source's report lifts only its own hold (review
     * 95: every source was one side, and one source's report lifted another's SIM-swap suspension); simroot's
     * reinstatement lifts all. `operator`: a source's hold folded before they were kept per source, which any source
     * lifts, as then. With several, the strictest decides.
     */
    holds: z
      .object({
        simroot: holdSchema.optional(),
        operator: holdSchema.optional(),
        sources: z.record(z.string(), holdSchema).optional(),
      })
      .optional()
      .meta({
        description:
          "simroot's hold and each ingestion source's (`sources`, by source id; `operator`: one kept before holds were kept per source): a source's report lifts only its own",
      }),
    imei: z.string().optional(),
    imeiSince: z.string().optional().meta({
      description:
        "when the report that named the device's current equipment (or said it changed without naming it) was made; absent for the IMEI it was registered with",
    }),
    sessions: z.partialRecord(bearerSchema, sessionSchema),
    roaming: z.object({ roaming: z.boolean(), mcc: z.string().optional(), country: z.string().optional(), since: z.string() }).optional(),
    reachable: z.object({ reachable: z.boolean(), via: z.string().optional(), since: z.string() }).optional(),
    profiles: z.record(z.string(), profileSchema),
  })
  .meta({ id: "IdentityState" });
export type IdentityState = z.output<typeof identityStateSchema>;

export type Sessions = Partial<Record<Bearer, Session>>;

/** Per-device settings the fold honours (from the device, defaulted from its tenant). */
export interface FoldSettings {
  /** An IMEI change quarantines the device. */
  readonly imeiLock: boolean;
  /** ISO countries the device may roam into; empty means anywhere. */
  readonly allowedCountries: readonly string[];
}
