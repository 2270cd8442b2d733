import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import {
  createPolicy,
  enforcementRecordSchema,
  enforcementSettingsSchema,
  getEnforcement,
  getPolicy,
  listPolicies,
  pageInput,
  policyInput,
  policySchema,
  outcomeValue,
  removePolicy,
  replaceEnforcement,
  replacePolicy,
  SimrootError,
} from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole, writers } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";
import { etagOf, ifMatchHeaders, matchedRevision } from "../preconditions.ts";

const policyId = z.object({ id: z.string().meta({ param: { name: "id", in: "path" }, example: "pol_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }) });
const ifMatch = ifMatchHeaders;
const body = <Schema extends z.ZodType>(schema: Schema) => ({ required: true, content: { "application/json": { schema } } });

const routes = {
  create: createRoute({
    method: "post",
    path: "/v1/policies",
    tags: ["policy"],
    summary: "Create a policy rule (allow or deny devices matching a label selector to reach destinations)",
    middleware: [requireRole(...writers)] as const,
    request: { body: body(createPolicy.schema) },
    responses: { 201: json("The rule", policySchema), ...errorResponses(400, 401, 403) },
  }),
  list: createRoute({
    method: "get",
    path: "/v1/policies",
    tags: ["policy"],
    summary: "List the tenant's policy rules, oldest first",
    middleware: [requireRole(...readers)] as const,
    request: { query: pageInput },
    responses: { 200: json("A page of rules", pageOf(policySchema, "PolicyPage")), ...errorResponses(400, 401, 403) },
  }),
  get: createRoute({
    method: "get",
    path: "/v1/policies/{id}",
    tags: ["policy"],
    summary: "Get a policy rule (its ETag is its revision)",
    middleware: [requireRole(...readers)] as const,
    request: { params: policyId },
    responses: { 200: json("The rule", policySchema), ...errorResponses(401, 403, 404) },
  }),
  replace: createRoute({
    method: "put",
    path: "/v1/policies/{id}",
    tags: ["policy"],
    summary: "Replace a policy rule whole; needs If-Match",
    middleware: [requireRole(...writers)] as const,
    request: { params: policyId, headers: ifMatch, body: body(policyInput) },
    responses: { 200: json("The rule", policySchema), ...errorResponses(400, 401, 403, 404, 412, 428) },
  }),
  remove: createRoute({
    method: "delete",
    path: "/v1/policies/{id}",
    tags: ["policy"],
    summary: "Delete a policy rule; needs If-Match",
    middleware: [requireRole(...writers)] as const,
    request: { params: policyId, headers: ifMatch },
    responses: { 204: { description: "Deleted" }, ...errorResponses(401, 403, 404, 412, 428) },
  }),
  enforcement: createRoute({
    method: "get",
    path: "/v1/enforcement",
    tags: ["policy"],
    summary: 'The tenant\'s enforcement settings: quarantine destinations and fail mode (ETag "0" until first set)',
    middleware: [requireRole(...readers)] as const,
    responses: { 200: json("The settings", enforcementRecordSchema), ...errorResponses(401, 403) },
  }),
  replaceEnforcement: createRoute({
    method: "put",
    path: "/v1/enforcement",
    tags: ["policy"],
    summary: "Replace the enforcement settings; needs If-Match (the fail mode is an admin's to change)",
    middleware: [requireRole(...writers)] as const,
    request: { headers: ifMatch, body: body(enforcementSettingsSchema) },
    responses: { 200: json("The settings", enforcementRecordSchema), ...errorResponses(400, 401, 403, 412, 428) },
  }),
};

export const policyRoutes = new OpenAPIHono<AppEnv>()
  .openapi(routes.create, async (c) => {
    const policy = outcomeValue(await createPolicy(c.get("ports"), c.get("ctx"), c.req.valid("json")));
    c.header("location", `/v1/policies/${policy.id}`);
    c.header("etag", etagOf(policy.revision));
    return c.json(policy, 201);
  })
  .openapi(routes.list, async (c) => c.json(await listPolicies(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
  .openapi(routes.get, async (c) => {
    const policy = await getPolicy(c.get("ports"), c.get("ctx"), c.req.valid("param"));
    c.header("etag", etagOf(policy.revision));
    return c.json(policy, 200);
  })
  .openapi(routes.replace, async (c) => {
    const revision = await matchedRevision(c, async () => (await getPolicy(c.get("ports"), c.get("ctx"), c.req.valid("param"))).revision);
    const input = { ...c.req.valid("json"), ...c.req.valid("param"), revision };
    const policy = outcomeValue(await replacePolicy(c.get("ports"), c.get("ctx"), input));
    c.header("etag", etagOf(policy.revision));
    return c.json(policy, 200);
  })
  .openapi(routes.remove, async (c) => {
    const revision = await matchedRevision(c, async () => (await getPolicy(c.get("ports"), c.get("ctx"), c.req.valid("param"))).revision);
    outcomeValue(await removePolicy(c.get("ports"), c.get("ctx"), { ...c.req.valid("param"), revision }));
    return c.body(null, 204);
  })
  .openapi(routes.enforcement, async (c) => {
    const settings = await getEnforcement(c.get("ports"), c.get("ctx"), {});
    c.header("etag", etagOf(settings.revision));
    return c.json(settings, 200);
  })
  .openapi(routes.replaceEnforcement, async (c) => {
    const current = await getEnforcement(c.get("ports"), c.get("ctx"), {});
    // The fail mode is an admin's, as on PATCH /v1/tenant/settings (which writes the same value); the quarantine
    // destinations are the writers' (review 73: an operator turned the tenant fail-open here).
    if (c.req.valid("json").failMode !== current.failMode && c.get("principal").role !== "admin")
      throw new SimrootError("auth.forbidden", "forbidden", "Only an admin key may change the fail mode");
    const revision = await matchedRevision(c, async () => current.revision);
    const settings = outcomeValue(await replaceEnforcement(c.get("ports"), c.get("ctx"), { ...c.req.valid("json"), revision }));
    c.header("etag", etagOf(settings.revision));
    return c.json(settings, 200);
  });
