/**
 * The API's shapes, from the SDK's types generated from /openapi.json: the console typechecks
 * against the same contract integrators use, so a changed schema breaks its build, not its users.
 */
import type { components } from "../../sdk/src/openapi.d.ts";

type Schemas = components["schemas"];
export type Device = Schemas["Device"];
export type Session = Schemas["Session"];
export type TimelineEntry = Schemas["TimelineEntry"];
export type TrafficGraph = Schemas["TrafficGraph"];
export type TrafficEdge = TrafficGraph["edges"][number];
export type PolicyPreview = Schemas["PolicyPreview"];
export type ChangedFlow = PolicyPreview["newlyDenied"][number];
export type Policy = Schemas["Policy"];
export type AuditRecord = Schemas["AuditRecord"];
export type ChainVerification = Schemas["ChainVerification"];
export type ParkedEvent = Schemas["ParkedEvent"];
export type Source = Schemas["Source"];
export type SourceHealth = Schemas["SourceHealth"];
export type WhatIfDecision = Schemas["WhatIfDecision"];
export type Webhook = Schemas["Webhook"];
export type AutomationRule = Schemas["AutomationRule"];

export const states = ["active", "suspended", "quarantined", "revoked"] as const;

export const sessionsOf = (device: Device): Session[] =>
  Object.values(device.identity.sessions).filter((s): s is Session => s !== undefined);
export const countryOf = (device: Device) => device.identity.roaming?.country ?? sessionsOf(device).find((s) => s.country)?.country;
export const ipOf = (device: Device) =>
  sessionsOf(device)
    .map((s) => s.ipv4 ?? s.ipv6)
    .find(Boolean);

export const when = (iso: string | undefined) => (iso ? new Date(iso).toLocaleString() : "—");
