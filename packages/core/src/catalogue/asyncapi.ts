/**
 * The event catalogue as an AsyncAPI 3.0 document and JSON Schemas, generated from the
 * same zod schemas the adapters and the applier validate with.
 */
import { z } from "zod";
import { eventSource, ingestSource } from "../platform/rules.ts";
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

const envelope = (type: string, data: unknown) => ({
  type: "object",
  description: "A simroot domain event: the `detail` of the EventBridge envelope",
  required: ["id", "type", "tenantId", "subject", "time", "actor", "requestId", "data"],
  properties: {
    id: { type: "string", description: "evt_<ULID>, unique" },
    type: { const: type },
    tenantId: { type: "string" },
    subject: { type: "string", description: "the device id (or, for reported facts, how the source named the device)" },
    time: { type: "string", format: "date-time" },
    actor: { type: "string", description: "key:<id>, source:<id> or system:<component>" },
    requestId: { type: "string" },
    data,
  },
});

export function asyncApiDocument() {
  const payloads = catalogueJsonSchemas();
  const reported = z.toJSONSchema(normalizedEventSchema, { io: "input" });
  const messages: Record<string, unknown> = {};
  for (const type of catalogueTypes) {
    messages[`${messageName(type)}Applied`] = {
      name: type,
      title: `${type} (applied)`,
      summary: `The change simroot applied to a device's identity state.`,
      contentType: "application/json",
      payload: envelope(type, {
        allOf: [payloads[type], { type: "object", properties: { deviceId: { type: "string" }, cause: { type: "object" } } }],
      }),
    };
  }
  for (const type of simrootEventTypes) {
    messages[messageName(type)] = {
      name: type,
      title: type,
      summary: "An event simroot published (anomalies, automation, webhooks, incidents, API changes)",
      contentType: "application/json",
      payload: envelope(type, z.toJSONSchema(simrootEventPayloads[type], { io: "input" })),
    };
  }
  messages.factReported = {
    name: "fact.reported",
    title: "A fact reported by an operator source",
    contentType: "application/json",
    payload: envelope("sim.attached", {
      type: "object",
      properties: { sourceId: { type: "string" }, format: { type: "string" }, event: reported },
    }),
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
        description: "Facts accepted at /v1/ingest/{sourceId}, on their way to the applier",
        messages: { factReported: { $ref: "#/components/messages/factReported" } },
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
    },
    components: { messages },
  };
}
