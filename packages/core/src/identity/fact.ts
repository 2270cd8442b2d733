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
     * The sender stated no time, so `at` is the receipt's, and a redelivery of the fact carries another: its content,
     * which tells a redelivery from another fact under the same key, leaves `at` out (review 129: a CAMARA event without
     * `time`, delivered again, flipped roaming back).
     */
    readonly timeChosen?: true;
    /**
     * The time the sender stated, when it lay too far ahead and `at` is the receipt's (the clamp): its content holds
     * this one, which every delivery of the fact states alike, clamped or not (review 129: a clamped Data Streamer
     * record delivered again after its session ended reopened it; review 131: so did one delivered again once its
     * time was within the skew, and no longer clamped).
     */
    readonly stated?: string;
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
    ...(event.reportedAt !== undefined && Number.isFinite(Date.parse(event.reportedAt))
      ? { stated: new Date(event.reportedAt).toISOString() }
      : {}),
  } as Fact;
}

const compare = (a: string | number, b: string | number) => (a < b ? -1 : a > b ? 1 : 0);

/** Time order, ties broken by key so every replica sorts the same facts the same way. */
export const byTime = (a: Fact, b: Fact) => compare(a.at, b.at) || compare(a.key, b.key);

/** eUICC order: seqNumber (unsequenced SM-DP+ reports first), then time, then key. */
export const bySequence = (a: Fact, b: Fact) => compare(a.seq ?? -1, b.seq ?? -1) || byTime(a, b);
