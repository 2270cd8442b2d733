/** The audit trail and the flow reports as OCSF events (a SIEM's export): served beside the audit trail (apiEnforcement). */
import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import { ocsfExport, ocsfExportInput } from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { jsonLines } from "../json-lines.ts";
import { requireRole } from "../middleware.ts";
import { errorResponses } from "../openapi.ts";

const ocsfEvents = createRoute({
  method: "get",
  path: "/v1/ocsf/events",
  tags: ["integrations"],
  summary: "The audit trail or the PEPs' flow reports as OCSF events (JSON Lines), for a SIEM",
  middleware: requireRole("admin", "viewer"),
  request: { query: ocsfExportInput },
  responses: {
    200: { description: "One OCSF event per line", content: { "application/x-ndjson": { schema: z.string() } } },
    ...errorResponses(400, 401, 403),
  },
});

export const ocsfRoutes = new OpenAPIHono<AppEnv>().openapi(ocsfEvents, async (c) => {
  const query = c.req.valid("query");
  const { ports, ctx } = c.var;
  return jsonLines(c, async (write) => {
    for await (const events of ocsfExport(ports, ctx, query)) {
      if (events.length > 0) await write(`${events.map((event) => JSON.stringify(event)).join("\n")}\n`);
    }
  }) as never;
});
