import { createRoute, OpenAPIHono } from "../route-table.ts";
import { evaluateWhatIf, whatIfDecisionSchema } from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole } from "../middleware.ts";
import { errorResponses, json } from "../openapi.ts";

const evaluate = createRoute({
  method: "post",
  path: "/v1/decisions/evaluate",
  tags: ["policy"],
  summary: "What-if: how the current policy decides a connection of a device named by any identifier",
  description:
    "Runs the same engine enforcement points run, on the tenant's current rules, grants and enforcement settings and the device's current state and labels. Nothing is written.",
  middleware: [requireRole(...readers)] as const,
  request: { body: { required: true, content: { "application/json": { schema: evaluateWhatIf.schema } } } },
  responses: { 200: json("The decision", whatIfDecisionSchema), ...errorResponses(400, 401, 403, 404) },
});

export const decisionRoutes = new OpenAPIHono<AppEnv>().openapi(evaluate, async (c) =>
  c.json(await evaluateWhatIf(c.get("ports"), c.get("ctx"), c.req.valid("json")), 200),
);
