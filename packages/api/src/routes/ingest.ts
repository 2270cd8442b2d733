import { OpenAPIHono, z } from "@hono/zod-openapi";
import { ingest, SimrootError } from "@simroot/core";
import { adapters } from "@simroot/core/ingest/adapters/index";
import type { AppEnv } from "../env.ts";
import { errorResponses, json } from "../openapi.ts";

const ingestResult = z
  .object({
    sourceId: z.string(),
    accepted: z.array(z.object({ index: z.number().int(), id: z.string(), type: z.string() })),
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
  responses: { 202: json("Accepted and durably queued", ingestResult), ...errorResponses(400, 401, 404, 413) },
});

ingestRoutes.post(
  "/v1/ingest/:sourceId",
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
