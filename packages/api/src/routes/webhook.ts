import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import {
  createWebhook,
  deliverySchema,
  getWebhook,
  listDeliveries,
  listWebhooks,
  pageInput,
  outcomeValue,
  removeWebhook,
  replayDelivery,
  rotateWebhookSecret,
  updateWebhook,
  webhookSchema,
} from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole, writers } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";
import { etagOf, ifMatchHeaders, matchedRevision } from "../preconditions.ts";

const webhookId = z.object({ id: z.string().meta({ param: { name: "id", in: "path" }, example: "whk_01JD3Q4ZK8W9X2V5N6M7P8R9ST" }) });
const deliveryParams = webhookId.extend({ deliveryId: z.string().meta({ param: { name: "deliveryId", in: "path" } }) });
const tags = ["webhooks"];

const routes = {
  create: createRoute({
    method: "post",
    path: "/v1/webhooks",
    tags,
    summary: "Subscribe a URL to the events matching a pattern; a v1 secret is shown in this answer only",
    middleware: [requireRole(...writers)] as const,
    request: { body: { required: true, content: { "application/json": { schema: createWebhook.schema } } } },
    responses: {
      201: json("The subscription (with `secret` for v1)", webhookSchema.extend({ secret: z.string().optional() })),
      ...errorResponses(400, 401, 403, 409),
    },
  }),
  list: createRoute({
    method: "get",
    path: "/v1/webhooks",
    tags,
    summary: "List the tenant's webhook subscriptions",
    middleware: [requireRole(...readers)] as const,
    request: { query: pageInput },
    responses: { 200: json("A page of subscriptions", pageOf(webhookSchema, "WebhookPage")), ...errorResponses(400, 401, 403) },
  }),
  get: createRoute({
    method: "get",
    path: "/v1/webhooks/{id}",
    tags,
    summary: "Get a webhook subscription (disabled ones say why)",
    middleware: [requireRole(...readers)] as const,
    request: { params: webhookId },
    responses: { 200: json("The subscription", webhookSchema), ...errorResponses(401, 403, 404) },
  }),
  update: createRoute({
    method: "patch",
    path: "/v1/webhooks/{id}",
    tags,
    summary: "Change a subscription's URL, pattern or description, or enable it again; needs If-Match",
    middleware: [requireRole(...writers)] as const,
    request: {
      params: webhookId,
      headers: ifMatchHeaders,
      body: { required: true, content: { "application/json": { schema: updateWebhook.schema.shape.changes } } },
    },
    responses: { 200: json("The subscription", webhookSchema), ...errorResponses(400, 401, 403, 404, 412, 428) },
  }),
  remove: createRoute({
    method: "delete",
    path: "/v1/webhooks/{id}",
    tags,
    summary: "Remove a subscription (its pending deliveries fail); needs If-Match",
    middleware: [requireRole(...writers)] as const,
    request: { params: webhookId, headers: ifMatchHeaders },
    responses: { 200: json("Removed", z.object({ id: z.string() })), ...errorResponses(401, 403, 404, 412, 428) },
  }),
  rotate: createRoute({
    method: "post",
    path: "/v1/webhooks/{id}/rotate-secret",
    tags,
    summary:
      "A new signing secret (v1, shown in this answer only) or key pair (v1a); for a day each delivery is signed with both, new and previous",
    middleware: [requireRole(...writers)] as const,
    request: { params: webhookId },
    responses: {
      200: json("The subscription (with the new `secret` for v1)", webhookSchema.extend({ secret: z.string().optional() })),
      ...errorResponses(401, 403, 404, 409),
    },
  }),
  deliveries: createRoute({
    method: "get",
    path: "/v1/webhooks/{id}/deliveries",
    tags,
    summary: "The delivery log: each delivery with its status and last attempts, newest first (of the events the caller's role may read)",
    middleware: [requireRole(...readers)] as const,
    request: { params: webhookId, query: pageInput },
    responses: { 200: json("A page of deliveries", pageOf(deliverySchema, "WebhookDeliveryPage")), ...errorResponses(400, 401, 403, 404) },
  }),
  replay: createRoute({
    method: "post",
    path: "/v1/webhooks/{id}/deliveries/{deliveryId}/replay",
    tags,
    summary: "Send a delivery again, with the same webhook-id: due now, attempted by the webhook worker's next run",
    middleware: [requireRole(...writers)] as const,
    request: { params: deliveryParams },
    responses: { 202: json("The delivery, due again", deliverySchema), ...errorResponses(401, 403, 404, 409) },
  }),
};

export const webhookRoutes = new OpenAPIHono<AppEnv>()
  .openapi(routes.create, async (c) => {
    const webhook = outcomeValue(await createWebhook(c.get("ports"), c.get("ctx"), c.req.valid("json")));
    c.header("location", `/v1/webhooks/${webhook.id}`);
    c.header("etag", etagOf(webhook.revision));
    return c.json(webhook, 201);
  })
  .openapi(routes.list, async (c) => c.json(await listWebhooks(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
  .openapi(routes.get, async (c) => {
    const webhook = await getWebhook(c.get("ports"), c.get("ctx"), c.req.valid("param"));
    c.header("etag", etagOf(webhook.revision));
    return c.json(webhook, 200);
  })
  .openapi(routes.update, async (c) => {
    const input = {
      ...c.req.valid("param"),
      ifRevision: await matchedRevision(c, async () => (await getWebhook(c.get("ports"), c.get("ctx"), c.req.valid("param"))).revision),
      changes: c.req.valid("json"),
    };
    const webhook = outcomeValue(await updateWebhook(c.get("ports"), c.get("ctx"), input));
    c.header("etag", etagOf(webhook.revision));
    return c.json(webhook, 200);
  })
  .openapi(routes.remove, async (c) => {
    const input = {
      ...c.req.valid("param"),
      ifRevision: await matchedRevision(c, async () => (await getWebhook(c.get("ports"), c.get("ctx"), c.req.valid("param"))).revision),
    };
    return c.json(outcomeValue(await removeWebhook(c.get("ports"), c.get("ctx"), input)), 200);
  })
  .openapi(routes.rotate, async (c) => {
    const webhook = outcomeValue(await rotateWebhookSecret(c.get("ports"), c.get("ctx"), c.req.valid("param")));
    c.header("etag", etagOf(webhook.revision));
    return c.json(webhook, 200);
  })
  .openapi(routes.deliveries, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await listDeliveries(c.get("ports"), c.get("ctx"), { ...c.req.valid("query"), webhookId: id }), 200);
  })
  .openapi(routes.replay, async (c) => {
    const { id, deliveryId } = c.req.valid("param");
    // Due now: the webhook worker attempts it on its next run (every minute in AWS, every second locally). An attempt
    // started here after the answer ran on a Lambda frozen once it answered, to finish, if ever, at its next invocation.
    return c.json(await replayDelivery(c.get("ports"), c.get("ctx"), { webhookId: id, id: deliveryId }), 202);
  });
