import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import { listParked, pageInput, parkedSchema, replayParked } from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole, writers } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";

const list = createRoute({
  method: "get",
  path: "/v1/dead-letters",
  tags: ["ingestion"],
  summary: "Accepted events that could not be applied yet, with the reason",
  middleware: [requireRole(...readers)] as const,
  request: { query: pageInput },
  responses: { 200: json("A page of parked events", pageOf(parkedSchema, "ParkedPage")), ...errorResponses(400, 401, 403) },
});

const replay = createRoute({
  method: "post",
  path: "/v1/dead-letters/{id}/replay",
  tags: ["ingestion"],
  summary: "Send a parked event to the applier again (it leaves the list once applied)",
  middleware: [requireRole(...writers)] as const,
  request: { params: z.object({ id: z.string().meta({ param: { name: "id", in: "path" } }) }) },
  responses: { 202: json("Queued again", z.object({ id: z.string(), replayed: z.boolean() })), ...errorResponses(401, 403, 404) },
});

export const parkedRoutes = new OpenAPIHono<AppEnv>()
  .openapi(list, async (c) => c.json(await listParked(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
  .openapi(replay, async (c) => c.json(await replayParked(c.get("ports"), c.get("ctx"), c.req.valid("param")), 202));
