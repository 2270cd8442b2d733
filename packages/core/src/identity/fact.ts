import type { CatalogueType, EventPayload, NormalizedEvent } from "../catalogue/catalogue.ts";

/**
 * A fact: one normalized event as the device's history keeps it. `key` identifies the
 * real-world occurrence (a redelivery has the same key), `at` orders it in time; eUICC
 * profile facts are ordered by `seq` (the eUICC's seqNumber) instead.
 */
export type Fact = {
  [Type in CatalogueType]: {
    readonly type: Type;
    readonly data: EventPayload<Type>;
    readonly key: string;
    readonly at: string;
    readonly seq?: number;
    /** The keys of simroot's reinstatements admitted before it, dated after it: they lift no hold it imposes. */
    readonly spares?: readonly string[];
    /**
     * On a fact that reports the device's equipment, the IMEI lock as it stood when the fact was admitted: the fold
     * holds to it (review 123: switched off, the lock's quarantine vanished at the next fold, with no reinstatement;
     * switched on, equipment changes it had let pass quarantined the device).
     */
    readonly lock?: boolean;
    /**
     * simroot chose `at` (the sender stated no time, or one too far ahead: the receive time), so a redelivery of the
     * fact carries another `at`: its content, which tells a redelivery from another fact under the same key, leaves
     * `at` out (review 129: a Data Streamer record clamped, delivered again after the session ended, reopened it).
     */
    readonly timeChosen?: true;
  };
}[CatalogueType];

export const isProfileFact = (fact: Fact) => fact.type.startsWith("profile.");

export function toFact(event: NormalizedEvent, sourceId: string): Fact {
  return {
    type: event.type,
    data: event.data,
    key: `${sourceId}|${event.dedupeKey}`,
    at: new Date(event.occurredAt).toISOString(),
    ...(event.sequence !== undefined ? { seq: event.sequence } : {}),
    ...(event.timeChosen === true ? { timeChosen: true } : {}),
  } as Fact;
}

const compare = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);

/** Time order, ties broken by key so every replica sorts the same facts the same way. */
export const byTime = (a: Fact, b: Fact) => compare(a.at, b.at) || compare(a.key, b.key);

/** eUICC order: seqNumber (unsequenced SM-DP+ reports first), then time, then key. */
export const bySequence = (a: Fact, b: Fact) => compare(a.seq ?? -1, b.seq ?? -1) || byTime(a, b);
