import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import {
  apiKeySchema,
  createApiKey,
  createTenant,
  listApiKeys,
  pageInput,
  outcomeValue,
  readTenant,
  revokeApiKey,
  rotateApiKey,
  tenantView,
  tenantViewSchema,
  tenantSettingsPatchSchema,
  updateTenantSettings,
} from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";
import { etagOf, ifMatchHeaders, matchedRevision } from "../preconditions.ts";

const admin = requireRole("admin");
const keyId = z.object({ id: z.string().meta({ param: { name: "id", in: "path" }, example: "key_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }) });
const keyWithToken = z
  .object({ key: apiKeySchema, token: z.string().meta({ description: "shown this once only" }) })
  .meta({ id: "ApiKeyWithToken" });

const routes = {
  createKey: createRoute({
    method: "post",
    path: "/v1/keys",
    tags: ["access"],
    summary: "Create an API key with a role (admin, operator, viewer, pep); its token is shown once",
    middleware: admin,
    request: { body: { required: true, content: { "application/json": { schema: createApiKey.schema } } } },
    responses: { 201: json("The key and its token", keyWithToken), ...errorResponses(400, 401, 403) },
  }),
  listKeys: createRoute({
    method: "get",
    path: "/v1/keys",
    tags: ["access"],
    summary: "List the tenant's API keys (never their secrets)",
    middleware: admin,
    request: { query: pageInput },
    responses: { 200: json("A page of keys", pageOf(apiKeySchema, "ApiKeyPage")), ...errorResponses(400, 401, 403) },
  }),
  rotateKey: createRoute({
    method: "post",
    path: "/v1/keys/{id}/rotate",
    tags: ["access"],
    summary:
      "Give a key a new secret (the old one stops working at once on this instance, within 1 s on the others); the token is shown once",
    middleware: admin,
    request: { params: keyId },
    responses: { 200: json("The key and its new token", keyWithToken), ...errorResponses(401, 403, 404, 409) },
  }),
  revokeKey: createRoute({
    method: "delete",
    path: "/v1/keys/{id}",
    tags: ["access"],
    summary: "Revoke a key",
    middleware: admin,
    request: { params: keyId },
    responses: { 200: json("The revoked key", apiKeySchema), ...errorResponses(401, 403, 404, 409) },
  }),
  tenant: createRoute({
    method: "get",
    path: "/v1/tenant",
    tags: ["access"],
    summary: "The caller's tenant and its settings",
    middleware: requireRole(...readers),
    responses: { 200: json("The tenant", tenantViewSchema), ...errorResponses(401, 403) },
  }),
  settings: createRoute({
    method: "patch",
    path: "/v1/tenant/settings",
    tags: ["access"],
    summary: "Change tenant settings (IMEI lock default, allowed countries, enforcement fail mode, rate limits); needs If-Match",
    middleware: admin,
    request: {
      headers: ifMatchHeaders,
      body: { required: true, content: { "application/json": { schema: tenantSettingsPatchSchema } } },
    },
    responses: { 200: json("The tenant", tenantViewSchema), ...errorResponses(400, 401, 403, 412, 428) },
  }),
  createTenant: createRoute({
    method: "post",
    path: "/v1/tenants",
    tags: ["access"],
    summary: "Create a tenant and its first admin key (platform tenant admins only)",
    middleware: admin,
    request: { body: { required: true, content: { "application/json": { schema: createTenant.schema } } } },
    responses: {
      201: json(
        "The tenant and its admin key token (shown once)",
        z.object({ tenant: tenantViewSchema, token: z.string(), keyId: z.string() }),
      ),
      ...errorResponses(400, 401, 403),
    },
  }),
};

export const accessRoutes = new OpenAPIHono<AppEnv>()
  .openapi(routes.createKey, async (c) => c.json(outcomeValue(await createApiKey(c.get("ports"), c.get("ctx"), c.req.valid("json"))), 201))
  .openapi(routes.listKeys, async (c) => c.json(await listApiKeys(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
  .openapi(routes.rotateKey, async (c) => c.json(outcomeValue(await rotateApiKey(c.get("ports"), c.get("ctx"), c.req.valid("param"))), 200))
  .openapi(routes.revokeKey, async (c) => c.json(outcomeValue(await revokeApiKey(c.get("ports"), c.get("ctx"), c.req.valid("param"))), 200))
  .openapi(routes.tenant, async (c) => {
    const tenant = await readTenant(c.get("ports"), c.get("ctx").tenantId);
    c.header("etag", etagOf(tenant.revision));
    return c.json(tenantView(tenant), 200);
  })
  .openapi(routes.settings, async (c) => {
    const ifRevision = await matchedRevision(c, async () => (await readTenant(c.get("ports"), c.get("ctx").tenantId)).revision);
    const tenant = outcomeValue(await updateTenantSettings(c.get("ports"), c.get("ctx"), { settings: c.req.valid("json"), ifRevision }));
    c.header("etag", etagOf(tenant.revision));
    return c.json(tenantView(tenant), 200);
  })
  .openapi(routes.createTenant, async (c) => {
    const created = await createTenant(c.get("ports"), c.get("ctx"), c.req.valid("json"));
    return c.json({ ...created, tenant: tenantView(created.tenant) }, 201);
  });
