import { OpenAPIHono, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { ingest, SimrootError } from "@simroot/core";
import { adapters } from "@simroot/core/ingest/adapters/index";
import type { AppEnv } from "../env.ts";
import { errorResponses, json } from "../openapi.ts";

/** Webhook bodies larger than this are refused with 413 before anything is read further. */
export const maxIngestBytes = 1024 * 1024;

const ingestResult = z
  .object({
    sourceId: z.string(),
    accepted: z.array(
      z.object({
        index: z.number().int(),
        id: z.string(),
        type: z.string(),
        clampedFrom: z.string().optional().meta({ description: "the time the sender stated, beyond the allowed clock skew: ordered at the receive time instead" }),
      }),
    ),
    rejected: z.array(z.object({ index: z.number().int(), errors: z.array(z.object({ path: z.string(), message: z.string() })) })),
  })
  .meta({ id: "IngestResult" });

export const ingestRoutes = new OpenAPIHono<AppEnv>();

ingestRoutes.openAPIRegistry.registerPath({
  method: "post",
  path: "/v1/ingest/{sourceId}",
  tags: ["ingestion"],
  summary: "Receive a webhook from an operator core or eSIM manager",
  description:
    "The body is in the source's format (simroot, camara, nef, datastreamer, supersim, eim) and is authenticated with the " +
    "source's own credentials (Standard Webhooks signature, Bearer token, Basic auth or X-Twilio-Signature), not an API key. " +
    "202 means every accepted event is durably queued for the applier; items the adapter refused are listed per index.",
  security: [],
  request: {
    params: z.object({ sourceId: z.string().meta({ param: { name: "sourceId", in: "path" } }) }),
    body: { required: true, content: { "application/json": { schema: z.unknown() }, "application/cloudevents+json": { schema: z.unknown() } } },
  },
  responses: { 202: json("Accepted and durably queued", ingestResult), ...errorResponses(400, 401, 404, 409, 413) },
});

ingestRoutes.post(
  "/v1/ingest/:sourceId",
  bodyLimit({
    maxSize: maxIngestBytes,
    onError: () => {
      throw new SimrootError("request.too_large", "input", `Bodies are limited to ${maxIngestBytes} bytes`, { detail: { status: 413 } });
    },
  }),
  async (c) => {
    const headers: Record<string, string> = {};
    c.req.raw.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });
    const result = await ingest(
      c.var.ports,
      adapters,
      c.req.param("sourceId"),
      { method: c.req.method, url: c.req.url, headers, body: await c.req.text(), now: c.var.ports.now() },
      c.var.requestId,
    );
    return c.json(result, 202);
  },
);
