import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import {
  createGrant,
  getGrant,
  grantRecordSchema,
  listGrants,
  pageInput,
  outcomeValue,
  revokeGrant,
  revokeGrantInput,
} from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole, writers } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";
import { etagOf } from "../preconditions.ts";

const grantId = z.object({ id: z.string().meta({ param: { name: "id", in: "path" }, example: "grt_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }) });

const routes = {
  create: createRoute({
    method: "post",
    path: "/v1/grants",
    tags: ["policy"],
    summary: "Grant a third party time-limited access to a device or a labelled group of devices",
    middleware: [requireRole(...writers)] as const,
    request: { body: { required: true, content: { "application/json": { schema: createGrant.schema } } } },
    responses: { 201: json("The grant", grantRecordSchema), ...errorResponses(400, 401, 403) },
  }),
  list: createRoute({
    method: "get",
    path: "/v1/grants",
    tags: ["policy"],
    summary: "List the tenant's grants, oldest first (expired and revoked ones included for 90 days after they ended)",
    middleware: [requireRole(...readers)] as const,
    request: { query: pageInput },
    responses: { 200: json("A page of grants", pageOf(grantRecordSchema, "GrantPage")), ...errorResponses(400, 401, 403) },
  }),
  get: createRoute({
    method: "get",
    path: "/v1/grants/{id}",
    tags: ["policy"],
    summary: "Get a grant",
    middleware: [requireRole(...readers)] as const,
    request: { params: grantId },
    responses: { 200: json("The grant", grantRecordSchema), ...errorResponses(401, 403, 404) },
  }),
  revoke: createRoute({
    method: "post",
    path: "/v1/grants/{id}/revoke",
    tags: ["policy"],
    summary: "End a grant now, before its notAfter",
    middleware: [requireRole(...writers)] as const,
    request: {
      params: grantId,
      body: { required: false, content: { "application/json": { schema: revokeGrantInput.pick({ reason: true }).strict() } } },
    },
    responses: { 200: json("The revoked grant", grantRecordSchema), ...errorResponses(400, 401, 403, 404, 409) },
  }),
};

export const grantRoutes = new OpenAPIHono<AppEnv>()
  .openapi(routes.create, async (c) => {
    const grant = outcomeValue(await createGrant(c.get("ports"), c.get("ctx"), c.req.valid("json")));
    c.header("location", `/v1/grants/${grant.id}`);
    c.header("etag", etagOf(grant.revision));
    return c.json(grant, 201);
  })
  .openapi(routes.list, async (c) => c.json(await listGrants(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
  .openapi(routes.get, async (c) => {
    const grant = await getGrant(c.get("ports"), c.get("ctx"), c.req.valid("param"));
    c.header("etag", etagOf(grant.revision));
    return c.json(grant, 200);
  })
  .openapi(routes.revoke, async (c) => {
    const body = c.req.header("content-type")?.includes("json") ? c.req.valid("json") : {};
    const grant = outcomeValue(await revokeGrant(c.get("ports"), c.get("ctx"), { ...body, ...c.req.valid("param") }));
    c.header("etag", etagOf(grant.revision));
    return c.json(grant, 200);
  });
