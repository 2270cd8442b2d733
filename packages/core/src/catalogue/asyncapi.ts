/**
 * The event catalogue as an AsyncAPI 3.0 document and JSON Schemas, generated from the
 * same zod schemas the adapters and the applier validate with.
 */
import * as z from "zod";
import { feedBareTopic, feedTopic, iotMessageUnitBytes, noticeDeltaMaxBytes } from "../feed/notifier.ts";
import { feedResponseSchema } from "../feed/wire.ts";
import { eventSource, ingestSource } from "../platform/bus-names.ts";
import { factsReportedType, maxFactsPerDevice, maxFactsPerEntry } from "../ingest/reported.ts";
import { catalogueTypes, eventPayloads, normalizedEventSchema, type CatalogueType } from "./catalogue.ts";
import { simrootEventPayloads, simrootEventTypes } from "./simroot-events.ts";

const messageName = (type: string) => type.replace(/[.-](\w)/g, (_, letter: string) => letter.toUpperCase());

/** JSON Schema (draft 2020-12) of every catalogue payload, by event type. */
export function catalogueJsonSchemas(): Record<CatalogueType, unknown> {
  return Object.fromEntries(catalogueTypes.map((type) => [type, z.toJSONSchema(eventPayloads[type], { io: "input" })])) as Record<
    CatalogueType,
    unknown
  >;
}

/** A domain event's schema: of one `type`, or (undefined) of any. */
const envelope = (type: string | undefined, data: unknown) => ({
  type: "object",
  description: "A simroot domain event: the `detail` of the EventBridge envelope",
  required: ["id", "type", "tenantId", "subject", "time", "actor", "requestId", "data"],
  properties: {
    id: { type: "string", description: "evt_<ULID>, unique" },
    type: type === undefined ? { type: "string" } : { const: type },
    tenantId: { type: "string" },
    subject: { type: "string", description: "the device id (or, for reported facts, how the source named the device)" },
    time: { type: "string", format: "date-time" },
    actor: { type: "string", description: "key:<id>, source:<id> or system:<component>" },
    requestId: { type: "string" },
    data,
  },
});

/** Fields the applier adds to what a fact reported (identity-state diff, lifecycle and profile changes). */
const lifecycle = {
  reason: { type: "string", description: "why the state changed" },
  previousState: { type: "string", enum: ["active", "suspended", "quarantined", "revoked"], description: "the state before" },
};
const since = { since: { type: "string", format: "date-time", description: "when the reported state began" } };
const country = { country: { type: "string", description: "ISO 3166-1 alpha-2 country of the serving network" } };
const appliedFields: Partial<Record<CatalogueType, Record<string, unknown>>> = {
  "device.roaming-changed": {
    ...since,
    ...country,
    allowed: { type: "boolean", description: "false when roaming in a country outside the tenant's allowed countries" },
  },
  "device.reachability-changed": since,
  "sim.attached": { ...since, ...country },
  "bearer.switched": { ...since, ...country, from: { type: "string", description: "the bearer the device left" } },
  "device.suspended": lifecycle,
  "device.quarantined": lifecycle,
  "device.reinstated": lifecycle,
  "device.revoked": lifecycle,
  "device.equipment-changed": { previousImei: { type: "string", description: "the IMEI before, when one was known" } },
  ...Object.fromEntries(
    (["profile.installed", "profile.enabled", "profile.disabled", "profile.deleted"] as const).map((type) => [
      type,
      {
        previousState: { type: "string", description: "the profile's state before" },
        result: { type: "string", enum: ["success", "failure"], description: "installations: whether it succeeded" },
      },
    ]),
  ),
};

/**
 * `z.toJSONSchema` output made a component: its `$defs` move to `components.schemas` (a
 * `#/$defs/X` reference inside an AsyncAPI document would point at the document root).
 */
function hoisted(schema: Record<string, unknown>, schemas: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _, $defs, ...rest } = schema as { $schema?: unknown; $defs?: Record<string, unknown> };
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (!node || typeof node !== "object") return node;
    return Object.fromEntries(
      Object.entries(node).map(([key, value]) => [
        key,
        key === "$ref" && typeof value === "string" ? value.replace(/^#\/\$defs\//, "#/components/schemas/") : rewrite(value),
      ]),
    );
  };
  for (const [name, definition] of Object.entries($defs ?? {})) schemas[name] = rewrite(definition);
  return rewrite(rest) as Record<string, unknown>;
}

export function asyncApiDocument() {
  const schemas: Record<string, unknown> = {};
  const payloads = Object.fromEntries(
    Object.entries(catalogueJsonSchemas()).map(([type, schema]) => [type, hoisted(schema as Record<string, unknown>, schemas)]),
  ) as Record<CatalogueType, unknown>;
  const reported = hoisted(z.toJSONSchema(normalizedEventSchema, { io: "input" }) as Record<string, unknown>, schemas);
  const messages: Record<string, unknown> = {};
  for (const type of catalogueTypes) {
    messages[`${messageName(type)}Applied`] = {
      name: type,
      title: `${type} (applied)`,
      summary: `The change simroot applied to a device's identity state.`,
      contentType: "application/json",
      payload: envelope(type, {
        allOf: [
          payloads[type],
          {
            type: "object",
            properties: {
              deviceId: { type: "string", description: "the device the change applies to" },
              revision: {
                type: "integer",
                minimum: 1,
                description:
                  "the device's revision once the change was applied: of two events of one device, the one with the higher revision is the later change, whatever order they are delivered in (absent on events recorded before 2026-12-07)",
              },
              cause: {
                type: "object",
                description: "the reported fact that caused the change (absent for changes made through the API)",
                properties: {
                  eventId: { type: "string" },
                  sourceId: { type: "string" },
                  sourceType: { type: "string", description: "the event type as the source named it" },
                  dedupeKey: { type: "string" },
                },
              },
              ...appliedFields[type],
            },
          },
        ],
      }),
    };
  }
  for (const type of simrootEventTypes) {
    messages[messageName(type)] = {
      name: type,
      title: type,
      summary: "An event simroot published (anomalies, automation, webhooks, incidents, API changes)",
      contentType: "application/json",
      payload: envelope(type, hoisted(z.toJSONSchema(simrootEventPayloads[type], { io: "input" }) as Record<string, unknown>, schemas)),
    };
  }
  const reportedData = {
    type: "object",
    properties: { sourceId: { type: "string" }, format: { type: "string" }, event: reported },
  };
  messages.factReported = {
    name: "fact.reported",
    title: "A fact reported by an operator source",
    contentType: "application/json",
    payload: envelope("sim.attached", reportedData),
  };
  messages.factsReported = {
    name: factsReportedType,
    title: "The facts of one ingestion request, packed",
    summary:
      `Up to ${maxFactsPerEntry} facts of one request (one tenant, one source), in order, one bus entry: the applier ` +
      "applies them in one invocation, each device's in time order. A device's facts of one request are never split " +
      `over entries (up to ${maxFactsPerDevice} in an entry of their own). A fact another rule routes by its content (an ` +
      "eUICC profile switch) travels alone.",
    contentType: "application/json",
    payload: envelope(factsReportedType, {
      type: "object",
      required: ["sourceId", "facts"],
      properties: {
        sourceId: { type: "string" },
        facts: {
          type: "array",
          minItems: 2,
          maxItems: Math.max(maxFactsPerEntry, maxFactsPerDevice),
          items: envelope(undefined, reportedData),
        },
      },
    }),
  };
  messages.feedNotice = {
    name: "feed.notice",
    title: "The tenant's feed head moved",
    summary:
      "Published on the feed's push channel (AWS IoT Core; locally the feed hub) by the instance that sequenced a change. " +
      "A hint, never authority: a PEP applies `response` only once it verifies it as a polled feed response (signature, " +
      "tenant, scope, epoch, expiry, continuity from the version it holds), and otherwise polls /v1/feed.",
    contentType: "application/json",
    payload: {
      type: "object",
      required: ["tenantId", "version"],
      properties: {
        tenantId: { type: "string" },
        version: { type: "integer", minimum: 0, description: "the feed version the tenant's head reached" },
        response: {
          ...hoisted(z.toJSONSchema(feedResponseSchema, { io: "output" }) as Record<string, unknown>, schemas),
          description:
            `The signed delta from the version before to \`version\`, as GET /v1/feed?since=<version before> answers it; ` +
            `absent when the notice would exceed ${noticeDeltaMaxBytes} bytes`,
        },
      },
    },
  };
  // Kept short: every API bundle carries this document (bench/bundle budgets).
  messages.feedNoticeGzipped = {
    name: "feed.notice (gzipped)",
    summary: `A feed.notice over ${iotMessageUnitBytes} bytes of JSON, gzipped: starts 0x1f 0x8b, not \`{\``,
    contentType: "application/gzip",
    payload: { type: "string", format: "binary" },
  };
  return {
    asyncapi: "3.0.0",
    info: {
      title: "simroot events",
      version: "0.1.0",
      description:
        "The normalized event catalogue. Operator cores and eSIM managers post webhooks in their own formats; simroot " +
        `normalizes them into facts (bus source \`${ingestSource}\`), applies them to device identity state, and publishes ` +
        `the changes it applied (bus source \`${eventSource}\`) for automation, timelines and outbound webhooks.`,
    },
    defaultContentType: "application/json",
    channels: {
      reported: {
        address: ingestSource,
        description: "Facts accepted at /v1/ingest/{sourceId}, on their way to the applier: a request's facts packed in one entry",
        messages: {
          factReported: { $ref: "#/components/messages/factReported" },
          factsReported: { $ref: "#/components/messages/factsReported" },
        },
      },
      feedNotices: {
        address: feedTopic("{tenantId}"),
        description:
          "The feed's push channel, over MQTT: a PEP connects with its `pep` API key as the password (in AWS through the " +
          "feed's custom authorizer) and may subscribe to its own tenant's topic only, never publish. A key bound to a " +
          "selector may not: the deltas name every site's devices (it follows `feedNoticesBare`)",
        parameters: { tenantId: { description: "the tenant whose feed moved" } },
        messages: {
          feedNotice: { $ref: "#/components/messages/feedNotice" },
          feedNoticeGzipped: { $ref: "#/components/messages/feedNoticeGzipped" },
        },
      },
      feedNoticesBare: {
        address: feedBareTopic("{tenantId}"),
        description:
          "The same notices with no delta (`tenantId` and `version` alone): the topic a `pep` key bound to a selector may " +
          "follow, and the only one; a PEP narrowed to a selector polls its feed when told",
        parameters: { tenantId: { description: "the tenant whose feed moved" } },
        messages: { feedNotice: { $ref: "#/components/messages/feedNotice" } },
      },
      applied: {
        address: eventSource,
        description: "Changes applied to device identity state (EventBridge detail-type = the event type)",
        messages: Object.fromEntries([
          ...catalogueTypes.map((type) => [`${messageName(type)}Applied`, { $ref: `#/components/messages/${messageName(type)}Applied` }]),
          ...simrootEventTypes.map((type) => [messageName(type), { $ref: `#/components/messages/${messageName(type)}` }]),
        ]),
      },
    },
    operations: {
      receiveReported: { action: "receive", channel: { $ref: "#/channels/reported" } },
      sendApplied: { action: "send", channel: { $ref: "#/channels/applied" } },
      sendFeedNotice: {
        action: "send",
        channel: { $ref: "#/channels/feedNotices" },
        bindings: { mqtt: { qos: 1, retain: false, bindingVersion: "0.2.0" } },
      },
      sendFeedNoticeBare: {
        action: "send",
        channel: { $ref: "#/channels/feedNoticesBare" },
        bindings: { mqtt: { qos: 1, retain: false, bindingVersion: "0.2.0" } },
      },
    },
    components: { messages, schemas },
  };
}
