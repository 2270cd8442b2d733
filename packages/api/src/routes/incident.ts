import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import {
  closeIncident,
  createIncident,
  getIncidentReport,
  getNis2Drafts,
  incidentSchema,
  listIncidents,
  pageInput,
  outcomeValue,
} from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole, writers } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";

const incidentId = z.object({ id: z.string().meta({ param: { name: "id", in: "path" }, example: "inc_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }) });
const tags = ["incidents"];
const entry = z.object({
  seq: z.number().int(),
  time: z.string(),
  type: z.string(),
  actor: z.string(),
  data: z.record(z.string(), z.unknown()),
});

const routes = {
  create: createRoute({
    method: "post",
    path: "/v1/incidents",
    tags,
    summary: "Open an incident for a device (the device's open incident when it has one)",
    middleware: [requireRole(...writers)] as const,
    request: { body: { required: true, content: { "application/json": { schema: createIncident.schema } } } },
    responses: { 201: json("The incident", incidentSchema), ...errorResponses(400, 401, 403) },
  }),
  list: createRoute({
    method: "get",
    path: "/v1/incidents",
    tags,
    summary: "List the tenant's incidents",
    middleware: [requireRole(...readers)] as const,
    request: { query: pageInput },
    responses: { 200: json("A page of incidents", pageOf(incidentSchema, "IncidentPage")), ...errorResponses(400, 401, 403) },
  }),
  get: createRoute({
    method: "get",
    path: "/v1/incidents/{id}",
    tags,
    summary: "An incident with what it gathered: the device's timeline, the anomalies and the actions taken",
    middleware: [requireRole(...readers)] as const,
    request: { params: incidentId },
    responses: {
      200: json(
        "The incident and its evidence",
        z.object({
          incident: incidentSchema,
          timeline: z.array(entry),
          anomalies: z.array(entry),
          actions: z.array(entry),
          omitted: z.number().int().min(0).meta({
            description:
              "records of the incident's own span left out of the timeline: past 10,000 of sessions and sightings, the newest 2,000 are kept; the incident's own records, anomalies, rules' firings and measures are, within the first 40,000 records of the span (past them only the close is read, and at least 1 is counted)",
          }),
        }),
      ),
      ...errorResponses(401, 403, 404),
    },
  }),
  nis2: createRoute({
    method: "get",
    path: "/v1/incidents/{id}/nis2",
    tags,
    summary: "NIS2 Art. 23 drafts from the incident: early warning (24 h), notification (72 h), final report (1 month)",
    middleware: [requireRole(...readers)] as const,
    request: { params: incidentId },
    responses: { 200: json("The drafts", z.record(z.string(), z.unknown())), ...errorResponses(401, 403, 404) },
  }),
  close: createRoute({
    method: "post",
    path: "/v1/incidents/{id}/close",
    tags,
    summary: "Close an incident with a summary",
    middleware: [requireRole(...writers)] as const,
    request: {
      params: incidentId,
      body: { required: true, content: { "application/json": { schema: z.strictObject({ summary: z.string().min(1).max(2000) }) } } },
    },
    responses: { 200: json("The closed incident", incidentSchema), ...errorResponses(400, 401, 403, 404, 409) },
  }),
};

export const incidentRoutes = new OpenAPIHono<AppEnv>()
  .openapi(routes.create, async (c) => {
    const incident = outcomeValue(await createIncident(c.get("ports"), c.get("ctx"), c.req.valid("json")));
    c.header("location", `/v1/incidents/${incident.id}`);
    return c.json(incident, 201);
  })
  .openapi(routes.list, async (c) => c.json(await listIncidents(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
  .openapi(routes.get, async (c) => c.json(await getIncidentReport(c.get("ports"), c.get("ctx"), c.req.valid("param")), 200))
  .openapi(routes.nis2, async (c) => c.json(await getNis2Drafts(c.get("ports"), c.get("ctx"), c.req.valid("param")), 200))
  .openapi(routes.close, async (c) => {
    const input = { ...c.req.valid("param"), ...c.req.valid("json") };
    return c.json(outcomeValue(await closeIncident(c.get("ports"), c.get("ctx"), input)), 200);
  });
