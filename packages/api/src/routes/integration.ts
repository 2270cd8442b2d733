import { createRoute, OpenAPIHono } from "../route-table.ts";
import { cloudflarePostureResponse, scoreCloudflareDevices } from "@simroot/core";
import type { AppEnv } from "../env.ts";
import { readers, requireRole } from "../middleware.ts";
import { errorResponses, json } from "../openapi.ts";

const cloudflarePosture = createRoute({
  method: "post",
  path: "/v1/integrations/cloudflare/posture",
  tags: ["integrations"],
  summary: "Cloudflare custom device posture: a 0-100 score per WARP device from simroot's verdict",
  description:
    "The service-to-service endpoint of a Cloudflare One custom device posture integration. A WARP device maps to the device whose `cloudflare/device` label holds its `device_id`, or whose IMEI is its `serial_number`; unknown devices score 0.",
  middleware: [requireRole(...readers)] as const,
  request: { body: { required: true, content: { "application/json": { schema: scoreCloudflareDevices.schema } } } },
  responses: { 200: json("The score of each device, by WARP device id", cloudflarePostureResponse), ...errorResponses(400, 401, 403) },
});

export const integrationRoutes = new OpenAPIHono<AppEnv>().openapi(cloudflarePosture, async (c) =>
  c.json(await scoreCloudflareDevices(c.get("ports"), c.get("ctx"), c.req.valid("json")), 200),
);
