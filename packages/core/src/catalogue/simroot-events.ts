/**
 * The events simroot publishes besides the identity changes of the normalized catalogue:
 * anomalies, automation, webhooks, incidents and the changes people make through the API.
 * With the catalogue, these are every event an automation rule, a webhook subscription or an
 * integrator's own EventBridge rule can match (bus source `simroot`, detail-type = `type`).
 */
import * as z from "zod";
import { anomalySchema } from "../anomaly/model.ts";

const loose = (description: string, fields: Record<string, z.ZodType> = {}) => z.looseObject(fields).meta({ description });
const record = z.record(z.string(), z.unknown());
const toldTypesSchema = z.array(z.string()).optional().meta({
  description:
    "the types the event it is about tells in turn (its own, and what it is about): an event of a type a role may not read is held back from it",
});

export const simrootEventPayloads = {
  "anomaly.detected": anomalySchema,
  "automation.fired": z.object({
    ruleId: z.string(),
    ruleName: z.string(),
    eventId: z.string().meta({ description: "the event that matched" }),
    eventType: z.string(),
    toldTypes: toldTypesSchema,
    outcome: z.enum(["fired", "dry-run", "rate-limited"]),
    actions: z.array(
      z.object({
        type: z.string(),
        outcome: z.enum(["done", "unchanged", "skipped", "would-do", "failed"]),
        detail: z.string().optional(),
      }),
    ),
  }),
  "automation.rule-created": loose("a rule was created", { rule: record }),
  "automation.rule-updated": loose("a rule was changed", { rule: record, changes: record }),
  "automation.rule-removed": loose("a rule was removed", { name: z.string() }),
  "incident.opened": z.object({
    incidentId: z.string(),
    deviceId: z.string(),
    severity: z.string(),
    ruleId: z.string().optional(),
    trigger: z.string().optional(),
  }),
  "incident.closed": z.object({ incidentId: z.string(), deviceId: z.string(), summary: z.string() }),
  "webhook.created": loose("a webhook subscription was created (no secret)", { webhook: record }),
  "webhook.updated": loose("a webhook subscription was changed", { webhook: record }),
  "webhook.secret-rotated": loose(
    "a webhook subscription's signing secret was rotated (no secret): the previous one signs too until `previousSecretUntil`",
    {
      webhook: record,
    },
  ),
  "webhook.disabled": loose("a receiver answered 410 Gone: the subscription is disabled", { webhook: record }),
  "webhook.removed": loose("a webhook subscription was removed", { url: z.string() }),
  "bus.dead_letter_redriven": z.object({
    rule: z.string().meta({ description: "the consumer the event was handed back to" }),
    eventId: z.string(),
    eventType: z.string(),
    toldTypes: toldTypesSchema,
    reason: z.string().meta({ description: "why it had been dead-lettered" }),
  }),
  "device.registered": loose("a device was registered", { device: record }),
  "device.updated": loose("a device was renamed, relabelled or its IMEI lock changed", {
    changes: record,
    revision: z.number().int().positive().optional().meta({ description: "the device's revision once changed (see the applied events')" }),
  }),
  "grant.created": loose("a grant was created", { grant: record }),
  "grant.revoked": loose("a grant was ended early", { revokedAt: z.string(), principal: z.string() }),
  "policy.created": loose("a policy was created"),
  "policy.updated": loose("a policy was changed"),
  "policy.deleted": loose("a policy was deleted"),
  "enforcement.updated": loose("the tenant's enforcement settings changed"),
  "tenant.settings-changed": loose("the tenant's settings changed"),
  "tenant.created": loose("a tenant was created, with its first admin key (never its token)", {
    tenantId: z.string(),
    name: z.string(),
    adminKeyId: z.string(),
  }),
  "source.created": loose("an ingestion source was created (its trust anchors, never its secrets)", {
    sourceId: z.string(),
    name: z.string(),
    format: z.string(),
  }),
  "source.credentials-rotated": loose("an ingestion source's credentials were replaced (never the secrets)", {
    sourceId: z.string(),
    rotatedAt: z.string(),
  }),
  "source.deleted": loose("an ingestion source was deleted: its sender is refused from then on", {
    sourceId: z.string(),
    name: z.string(),
    deletedAt: z.string(),
  }),
  "ingest.refused": loose("a notification whose origin could not be verified (a forged or tampered eUICC signature)", {
    sourceId: z.string(),
    refusals: z.array(record),
  }),
  "sim.session-recorded": loose("a data session older than the device's newest, kept for the IP lease history", {
    deviceId: z.string(),
    since: z.string(),
  }),
  "feed.epoch-advanced": loose("an admin advanced the feed's epoch: enforcement points take a snapshot", {
    epoch: z.number(),
    previous: z.number(),
    reason: z.string(),
  }),
  "integration.iot-synced": loose("a change was delivered to AWS IoT Core (thing groups, policies)", { cause: record }),
  "integration.tailscale-synced": loose("a device's posture was pushed to Tailscale as device attributes", { cause: record }),
  "integration.siem-synced": loose("an event was streamed to the SIEM in OCSF", { cause: record }),
  "key.created": loose("an API key was created (never its token)"),
  "key.rotated": loose("an API key was rotated"),
  "key.revoked": loose("an API key was revoked"),
} as const;

export type SimrootEventType = keyof typeof simrootEventPayloads;
export const simrootEventTypes = Object.keys(simrootEventPayloads) as SimrootEventType[];
