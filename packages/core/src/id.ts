import { createHash, randomBytes } from "node:crypto";

/** Crockford's base 32, as ULIDs spell it. */
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
let lastTime = -1;
/** The last id's 16 random digits (80 bits), each 0 to 31. */
let lastRandom: number[] = [];

/**
 * A ULID (https://github.com/ulid/spec): 10 digits of milliseconds, 16 of randomness. Within one millisecond (or when
 * the clock steps back) the randomness of the last id is incremented, so ids this process makes sort in the order it
 * made them.
 */
function ulid(time: number): string {
  if (time <= lastTime) {
    let digit = lastRandom.length - 1;
    while (digit >= 0 && lastRandom[digit] === 31) lastRandom[digit--] = 0;
    if (digit < 0) throw new Error("ULID randomness overflowed within one millisecond");
    lastRandom[digit]! += 1;
  } else {
    lastTime = time;
    lastRandom = [...randomBytes(16)].map((byte) => byte & 31);
  }
  let encoded = "";
  for (let rest = lastTime, digit = 0; digit < 10; digit++, rest = Math.floor(rest / 32)) encoded = alphabet[rest % 32] + encoded;
  return encoded + lastRandom.map((digit) => alphabet[digit]).join("");
}

/** Prefixes of simroot's sortable ids: `dev_01J...`. */
export const idPrefixes = {
  device: "dev",
  event: "evt",
  audit: "aud",
  tenant: "ten",
  request: "req",
  key: "key",
  source: "src",
  policy: "pol",
  grant: "grt",
  rule: "rul",
  webhook: "whk",
  message: "msg",
  incident: "inc",
} as const;

export type IdKind = keyof typeof idPrefixes;

export const newId = (kind: IdKind, time: number = Date.now()): string => `${idPrefixes[kind]}_${ulid(time)}`;

export const hasIdKind = (kind: IdKind, id: string): boolean => new RegExp(`^${idPrefixes[kind]}_[0-9A-HJKMNP-TV-Z]{26}$`).test(id);

/**
 * An id of `kind` at `time` whose 80 bits after the time come from `seed` (SHA-256): the same seed at the same time is
 * the same id, so an action taken again for the same cause (an event delivered twice) names the same item.
 */
export function idFromSeed(kind: IdKind, time: number, seed: string): string {
  const digest = createHash("sha256").update(seed).digest();
  let encoded = "";
  for (let rest = time, digit = 0; digit < 10; digit++, rest = Math.floor(rest / 32)) encoded = alphabet[rest % 32] + encoded;
  for (let digit = 0; digit < 16; digit++) encoded += alphabet[digest[digit]! & 31];
  return `${idPrefixes[kind]}_${encoded}`;
}
