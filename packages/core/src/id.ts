import { monotonicFactory } from "ulid";

const ulid = monotonicFactory();

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
