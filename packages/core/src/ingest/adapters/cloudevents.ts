/**
 * CloudEvents 1.0 over HTTP (the HTTP protocol binding), in every content mode a sender's SDK
 * produces: binary (attributes in `ce-*` headers, the body is the data), structured (one event,
 * `application/cloudevents+json`) and batch (a JSON array, `application/cloudevents-batch+json`).
 * `data` is optional, and `data_base64` carries binary data: JSON inside it is decoded into `data`.
 */
import type { IngestRequest } from "../adapter.ts";
import { isRecord, jsonItems, parseJson, type InvalidBody } from "./body.ts";

const jsonType = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * CloudEvents' JSON media types: structured mode, batch mode, and the data's own type in binary mode (JSON: the formats
 * read data as JSON) or a sender labelling its events plainly (Twilio Event Streams posts `application/json`).
 */
export const cloudEventsMediaTypes = ["application/json", "application/cloudevents+json", "application/cloudevents-batch+json"] as const;

/** The events of the request, each a plain object for the format's own schema to check. */
export function cloudEventsOf(request: IngestRequest, invalidBody: InvalidBody, expected: string): unknown[] {
  if (request.headers["ce-specversion"] !== undefined) return [binaryEvent(request, invalidBody)];
  return jsonItems(request.body, invalidBody, expected).map(withDecodedData);
}

function binaryEvent(request: IngestRequest, invalidBody: InvalidBody): Record<string, unknown> {
  const event: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (name.startsWith("ce-")) event[name.slice(3)] = percentDecoded(value);
  }
  const contentType = request.headers["content-type"];
  if (contentType) event["datacontenttype"] = contentType;
  if (request.body.trim() !== "") {
    event["data"] = contentType === undefined || jsonType.test(contentType) ? parseJson(request.body, invalidBody) : request.body;
  }
  return event;
}

/** Header values are percent-encoded by the binding (section 3.1.3.2). */
function percentDecoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function withDecodedData(raw: unknown): unknown {
  if (!isRecord(raw) || raw["data"] !== undefined || typeof raw["data_base64"] !== "string") return raw;
  const type = typeof raw["datacontenttype"] === "string" ? raw["datacontenttype"] : "application/json";
  if (!jsonType.test(type)) return raw;
  try {
    return { ...raw, data: JSON.parse(Buffer.from(raw["data_base64"], "base64").toString("utf8")) };
  } catch {
    return raw;
  }
}
