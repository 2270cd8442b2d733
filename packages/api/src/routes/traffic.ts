import { createRoute, OpenAPIHono } from "../route-table.ts";
import {
  listSourceHealth,
  pageInput,
  sourceHealthSchema,
  getTrafficGraph,
  policyPreviewSchema,
  previewPolicyChange,
  trafficGraphSchema,
  trafficInput,
} from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole, writers } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";

const traffic = createRoute({
  method: "get",
  path: "/v1/traffic",
  tags: ["enforcement"],
  summary: "The traffic map: segments (devices grouped by a label) to destinations, allowed and denied, from flow reports",
  middleware: [requireRole(...readers)] as const,
  request: { query: trafficInput },
  responses: { 200: json("The map", trafficGraphSchema), ...errorResponses(400, 401, 403) },
});

const preview = createRoute({
  method: "post",
  path: "/v1/policies/preview",
  tags: ["policy"],
  summary: "Before saving a rule (or removing one): the reported connections it would newly allow or deny, and the devices it selects",
  middleware: [requireRole(...writers)] as const,
  request: { body: { required: true, content: { "application/json": { schema: previewPolicyChange.schema } } } },
  responses: { 200: json("What would change", policyPreviewSchema), ...errorResponses(400, 401, 403, 404) },
});

const sourceHealth = createRoute({
  method: "get",
  path: "/v1/source-health",
  tags: ["ingestion"],
  summary: "How each ingestion source is doing: last request and event, accepted events and rejected items",
  middleware: [requireRole(...readers)] as const,
  request: { query: pageInput },
  responses: {
    200: json("A page of sources, by source id", pageOf(sourceHealthSchema, "SourceHealthPage")),
    ...errorResponses(400, 401, 403),
  },
});

export const trafficRoutes = new OpenAPIHono<AppEnv>()
  .openapi(traffic, async (c) => c.json(await getTrafficGraph(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
  .openapi(preview, async (c) => c.json(await previewPolicyChange(c.get("ports"), c.get("ctx"), c.req.valid("json")), 200))
  .openapi(sourceHealth, async (c) => c.json(await listSourceHealth(c.get("ports"), c.get("ctx").tenantId, c.req.valid("query")), 200));
