import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import {
  createSource,
  credentialsSchema,
  deleteSource,
  getSource,
  listSources,
  pageInput,
  rotateSourceCredentials,
  sourceSchema,
} from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { requireRole } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";

const sourceId = z.object({ id: z.string().meta({ param: { name: "id", in: "path" }, example: "src_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }) });
const withCredentials = z.object({ source: sourceSchema, credentials: credentialsSchema }).meta({ id: "SourceWithCredentials" });
const admin = requireRole("admin");

const create = createRoute({
  method: "post",
  path: "/v1/sources",
  tags: ["ingestion"],
  summary: "Create an ingestion source (its credentials are shown this once)",
  middleware: admin,
  request: { body: { required: true, content: { "application/json": { schema: createSource.schema } } } },
  responses: { 201: json("The source and its credentials", withCredentials), ...errorResponses(400, 401, 403) },
});

const list = createRoute({
  method: "get",
  path: "/v1/sources",
  tags: ["ingestion"],
  summary: "List the tenant's ingestion sources",
  middleware: admin,
  request: { query: pageInput },
  responses: { 200: json("A page of sources", pageOf(sourceSchema, "SourcePage")), ...errorResponses(400, 401, 403) },
});

const get = createRoute({
  method: "get",
  path: "/v1/sources/{id}",
  tags: ["ingestion"],
  summary: "Get an ingestion source",
  middleware: admin,
  request: { params: sourceId },
  responses: { 200: json("The source", sourceSchema), ...errorResponses(401, 403, 404) },
});

const rotate = createRoute({
  method: "post",
  path: "/v1/sources/{id}/rotate",
  tags: ["ingestion"],
  summary: "Replace the source's credentials (the old ones stop working at once on this instance, within 5 s on the others)",
  middleware: admin,
  request: {
    params: sourceId,
    body: {
      required: false,
      content: {
        "application/json": { schema: z.strictObject({ credentials: credentialsSchema.optional() }).meta({ id: "SourceRotation" }) },
      },
    },
  },
  responses: { 200: json("The source and its new credentials", withCredentials), ...errorResponses(400, 401, 403, 404) },
});

const remove = createRoute({
  method: "delete",
  path: "/v1/sources/{id}",
  tags: ["ingestion"],
  summary:
    "Delete an ingestion source: its sender is refused from then on (at once on this instance, within 5 s on the others); its credentials and health are erased, the deletion audited",
  middleware: admin,
  request: { params: sourceId },
  responses: {
    200: json("Deleted", z.object({ id: z.string(), deletedAt: z.string() }).meta({ id: "SourceDeleted" })),
    ...errorResponses(401, 403, 404),
  },
});

export const sourceRoutes = new OpenAPIHono<AppEnv>()
  .openapi(create, async (c) => {
    const created = await createSource(c.get("ports"), c.get("ctx"), c.req.valid("json"));
    c.header("location", `/v1/sources/${created.source.id}`);
    return c.json(created, 201);
  })
  .openapi(list, async (c) => c.json(await listSources(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
  .openapi(get, async (c) => c.json(await getSource(c.get("ports"), c.get("ctx"), c.req.valid("param")), 200))
  .openapi(remove, async (c) => c.json(await deleteSource(c.get("ports"), c.get("ctx"), c.req.valid("param")), 200))
  .openapi(rotate, async (c) => {
    const body = c.req.header("content-type")?.includes("json") ? c.req.valid("json") : {};
    return c.json(await rotateSourceCredentials(c.get("ports"), c.get("ctx"), { ...c.req.valid("param"), ...body }), 200);
  });
