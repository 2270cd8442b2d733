import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import { createRule, getRule, listRules, pageInput, outcomeValue, removeRule, ruleSchema, updateRule } from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole, writers } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";
import { etagOf, ifMatchHeaders, matchedRevision } from "../preconditions.ts";

const ruleId = z.object({ id: z.string().meta({ param: { name: "id", in: "path" }, example: "rul_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }) });
const tags = ["automation"];

const routes = {
  create: createRoute({
    method: "post",
    path: "/v1/automation/rules",
    tags,
    summary: "Create an automation rule: an EventBridge pattern over simroot's events and the actions to take",
    middleware: [requireRole(...writers)] as const,
    request: { body: { required: true, content: { "application/json": { schema: createRule.schema } } } },
    responses: { 201: json("The rule", ruleSchema), ...errorResponses(400, 401, 403, 409) },
  }),
  list: createRoute({
    method: "get",
    path: "/v1/automation/rules",
    tags,
    summary: "List the tenant's automation rules",
    middleware: [requireRole(...readers)] as const,
    request: { query: pageInput },
    responses: { 200: json("A page of rules", pageOf(ruleSchema, "AutomationRulePage")), ...errorResponses(400, 401, 403) },
  }),
  get: createRoute({
    method: "get",
    path: "/v1/automation/rules/{id}",
    tags,
    summary: "Get an automation rule",
    middleware: [requireRole(...readers)] as const,
    request: { params: ruleId },
    responses: { 200: json("The rule", ruleSchema), ...errorResponses(401, 403, 404) },
  }),
  update: createRoute({
    method: "patch",
    path: "/v1/automation/rules/{id}",
    tags,
    summary: "Change a rule (pattern, actions, dry-run, enabled, rate limit); needs If-Match",
    middleware: [requireRole(...writers)] as const,
    request: {
      params: ruleId,
      headers: ifMatchHeaders,
      body: { required: true, content: { "application/json": { schema: updateRule.schema.shape.changes } } },
    },
    responses: { 200: json("The rule", ruleSchema), ...errorResponses(400, 401, 403, 404, 412, 428) },
  }),
  remove: createRoute({
    method: "delete",
    path: "/v1/automation/rules/{id}",
    tags,
    summary: "Remove a rule; needs If-Match",
    middleware: [requireRole(...writers)] as const,
    request: { params: ruleId, headers: ifMatchHeaders },
    responses: { 200: json("Removed", z.object({ id: z.string() })), ...errorResponses(401, 403, 404, 412, 428) },
  }),
};

export const automationRoutes = new OpenAPIHono<AppEnv>()
  .openapi(routes.create, async (c) => {
    const rule = outcomeValue(await createRule(c.get("ports"), c.get("ctx"), c.req.valid("json")));
    c.header("location", `/v1/automation/rules/${rule.id}`);
    c.header("etag", etagOf(rule.revision));
    return c.json(rule, 201);
  })
  .openapi(routes.list, async (c) => c.json(await listRules(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
  .openapi(routes.get, async (c) => {
    const rule = await getRule(c.get("ports"), c.get("ctx"), c.req.valid("param"));
    c.header("etag", etagOf(rule.revision));
    return c.json(rule, 200);
  })
  .openapi(routes.update, async (c) => {
    const input = {
      ...c.req.valid("param"),
      ifRevision: await matchedRevision(c, async () => (await getRule(c.get("ports"), c.get("ctx"), c.req.valid("param"))).revision),
      changes: c.req.valid("json"),
    };
    const rule = outcomeValue(await updateRule(c.get("ports"), c.get("ctx"), input));
    c.header("etag", etagOf(rule.revision));
    return c.json(rule, 200);
  })
  .openapi(routes.remove, async (c) => {
    const input = {
      ...c.req.valid("param"),
      ifRevision: await matchedRevision(c, async () => (await getRule(c.get("ports"), c.get("ctx"), c.req.valid("param"))).revision),
    };
    return c.json(outcomeValue(await removeRule(c.get("ports"), c.get("ctx"), input)), 200);
  });
