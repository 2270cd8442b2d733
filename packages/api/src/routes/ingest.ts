import * as z from "zod";
import { OpenAPIHono } from "../route-table.ts";
import { ingest, isSimrootError } from "@simroot/core";
import { adapters } from "@simroot/core/ingest/adapters/index";
import type { AppEnv } from "../env.ts";
import { errorResponses, json } from "../openapi.ts";
import { ingestSecurity } from "../openapi-security.ts";

const ingestResult = z
  .object({
    sourceId: z.string(),
    accepted: z.array(
      z.object({
        index: z.number().int(),
        id: z.string(),
        type: z.string(),
        clampedFrom: z.string().optional().meta({
          description:
            "the time the sender stated, beyond the allowed clock skew: ordered at the receive time instead (in UTC when its text is over 64 characters)",
        }),
      }),
    ),
    rejected: z.array(
      z.object({
        index: z.number().int(),
        errors: z.array(z.object({ path: z.string(), message: z.string() })),
        unlistedErrors: z.number().int().min(1).optional().meta({
          description:
            "how many of the item's errors are not listed: an answer lists at most 10 an item, cut to length, while it stays within 300 KB",
        }),
      }),
    ),
  })
  .meta({
    id: "IngestResult",
    description: "every accepted event and every rejected item, by index; the same answer for a retry of a simroot webhook-id",
  });

/** A CloudEvents 1.0 event in structured mode (binary mode carries the attributes as `ce-*` headers). */
const cloudEvent = z
  .object({
    specversion: z.literal("1.0"),
    id: z.string().min(1),
    source: z.string().min(1),
    type: z.string().min(1),
    time: z.string().optional(),
    datacontenttype: z.string().optional(),
    data: z.unknown().optional(),
    data_base64: z.string().optional().meta({ description: "binary data, base64 (instead of `data`)" }),
  })
  .catchall(z.unknown())
  .meta({ id: "CloudEvent" });

const webhookBody = z.union([z.record(z.string(), z.unknown()), z.array(z.record(z.string(), z.unknown()))]).meta({
  id: "WebhookBody",
  description:
    "One event object or a JSON array of them, in the source's format: `simroot` NormalizedEvent, `camara` and `supersim` " +
    "CloudEvents, `nef` 3GPP TS 29.122 MonitoringNotification (reused northbound by the 5G NEF, TS 29.522), `datastreamer` Datastreamer event, `eim` SGP.32 eIM notification.",
});

export const ingestRoutes = new OpenAPIHono<AppEnv>();

const utf8 = new TextDecoder();

/**
 * The URL the sender posted to, as it signed it (Twilio signs the full URL): behind a proxy
 * that terminates TLS, `SIMROOT_PUBLIC_BASE_URL` (e.g. `https://api.example.com`) when set,
 * else the `X-Forwarded-Proto`/`X-Forwarded-Host` (or RFC 7239 `Forwarded`) the proxy added.
 */
export function publicUrl(received: string, headers: Readonly<Record<string, string>>): string {
  const url = new URL(received);
  const configured = process.env["SIMROOT_PUBLIC_BASE_URL"];
  const forwarded = /(?:^|[;,\s])proto=("?)(https?)\1/i.exec(headers["forwarded"] ?? "");
  const forwardedHost = /(?:^|[;,\s])host=("?)([^";,\s]+)\1/i.exec(headers["forwarded"] ?? "");
  const proto = headers["x-forwarded-proto"]?.split(",")[0]?.trim() ?? forwarded?.[2];
  const host = headers["x-forwarded-host"]?.split(",")[0]?.trim() ?? forwardedHost?.[2];
  const base =
    configured?.replace(/\/+$/, "") ?? (proto || host ? `${proto ?? url.protocol.slice(0, -1)}://${host ?? url.host}` : undefined);
  return base === undefined ? received : `${base}${url.pathname}${url.search}`;
}

ingestRoutes.openAPIRegistry.registerPath({
  method: "post",
  path: "/v1/ingest/{sourceId}",
  tags: ["ingestion"],
  summary: "Receive a webhook from an operator core or eSIM manager",
  description:
    "The body is in the source's format (simroot, camara, nef, datastreamer, supersim, eim) and is authenticated with the " +
    "source's own credentials (Standard Webhooks signature, Bearer token, Basic auth or X-Twilio-Signature), not an API key. " +
    "202 means every accepted event is durably queued for the applier; items the adapter refused are listed per index.",
  security: ingestSecurity,
  request: {
    params: z.object({ sourceId: z.string().meta({ param: { name: "sourceId", in: "path" } }) }),
    body: {
      required: true,
      content: {
        "application/json": { schema: webhookBody },
        "application/cloudevents+json": { schema: cloudEvent },
        "application/cloudevents-batch+json": { schema: z.array(cloudEvent) },
      },
    },
  },
  responses: {
    202: json("Accepted and durably queued", ingestResult),
    ...errorResponses(400, 401, 409, 413, 503),
    401: {
      ...errorResponses(401)[401],
      description:
        "Missing or invalid source credentials (the signature, token or password the source was given), or no source has " +
        "this id: one answer, `ingest.unauthenticated`, whichever it is and whatever the format, so source ids cannot be " +
        "told apart from ids of no source (the reason is logged with the request id)",
    },
    415: {
      ...errorResponses(415)[415],
      description:
        "The body is not labelled with a media type of the source's format (checked once the request is authenticated): " +
        "`application/json`, and for `camara` and `supersim` also `application/cloudevents+json` and " +
        "`application/cloudevents-batch+json`. An unlabelled body is refused too; `Accept-Post` lists the types the source takes.",
      headers: {
        "Accept-Post": { description: "the media types the source's format takes", required: true, schema: { type: "string" } },
      },
    },
  },
});

ingestRoutes.post("/v1/ingest/:sourceId", async (c) => {
  const headers: Record<string, string> = {};
  c.req.raw.headers.forEach((value, name) => {
    headers[name.toLowerCase()] = value;
  });
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  const request = {
    method: c.req.method,
    url: publicUrl(c.req.url, headers),
    headers,
    body: utf8.decode(bytes),
    bytes,
    now: c.get("ports").now(),
  };
  const sourceId = c.req.param("sourceId");
  const { result, rateHeaders } = await ingest(c.get("ports"), adapters, sourceId, request, c.get("requestId")).catch((error: unknown) => {
    // One answer for every refusal (review 83); why this one was refused is for the operator, in the log.
    if (isSimrootError(error) && error.code === "ingest.unauthenticated") {
      const reason = error.cause instanceof Error ? error.cause.message : "refused";
      c.get("log").info("webhook not authenticated", { requestId: c.get("requestId"), sourceId: sourceId.slice(0, 64), reason });
    }
    throw error;
  });
  for (const [name, value] of Object.entries(rateHeaders)) c.header(name, value);
  return c.json(result, 202);
});
