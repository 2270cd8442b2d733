import { OpenAPIHono } from "@hono/zod-openapi";
import { asyncApiDocument, SimrootError } from "@simroot/core";
import type { AppEnv, AppOptions } from "./env.ts";
import { jsonBodies, limitBody, tooLarge } from "./body-limit.ts";
import { docsRoutes } from "./docs.ts";
import { requestId } from "./middleware.ts";
import { isMissingIfMatch, preconditionRequired } from "./preconditions.ts";
import { unmatched } from "./methods.ts";
import { completeDocument } from "./openapi-document.ts";
import { securitySchemes } from "./openapi-security.ts";
import { problemResponse } from "./problem.ts";
import { accessRoutes } from "./routes/access.ts";
import { auditRoutes } from "./routes/audit.ts";
import { decisionRoutes } from "./routes/decision.ts";
import { deviceRoutes } from "./routes/device.ts";
import { feedRoutes } from "./routes/feed.ts";
import { grantRoutes } from "./routes/grant.ts";
import { ingestRoutes } from "./routes/ingest.ts";
import { parkedRoutes } from "./routes/parked.ts";
import { busRoutes } from "./routes/bus.ts";
import { policyRoutes } from "./routes/policy.ts";
import { sourceRoutes } from "./routes/source.ts";
import { healthRoutes } from "./routes/health.ts";
import { automationRoutes } from "./routes/automation.ts";
import { incidentRoutes } from "./routes/incident.ts";
import { webhookRoutes } from "./routes/webhook.ts";
import { integrationRoutes } from "./routes/integration.ts";
import { consoleRoutes } from "./routes/console.ts";
import { liveRoutes } from "./routes/live.ts";
import { trafficRoutes } from "./routes/traffic.ts";
import { fileURLToPath } from "node:url";

/** Where `npm run console:build` puts the console, beside this package. */
const builtConsole = fileURLToPath(new URL("../../console/dist", import.meta.url));

/** The one HTTP app: served by @hono/node-server locally and by hono/aws-lambda in AWS. */
export function createApp(options: AppOptions) {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      if (
        isMissingIfMatch(
          result.target,
          result.error.issues.map((issue) => String(issue.path[0])),
        )
      )
        throw preconditionRequired();
      throw new SimrootError("request.invalid", "input", "The request does not match the API", {
        issues: result.error.issues.map((issue) => ({ path: issue.path.map(String).join(".") || "(body)", message: issue.message })),
      });
    },
  });
  app.use(requestId(options));
  app.use(limitBody, jsonBodies);
  app.onError((error, c) => problemResponse(c, c.get("bodyTooLarge") ? tooLarge() : error));
  app.notFound((c) => problemResponse(c, unmatched(c, app.routes)));
  app.route("/", healthRoutes(options));
  app.route("/", deviceRoutes);
  app.route("/", sourceRoutes);
  app.route("/", ingestRoutes);
  app.route("/", parkedRoutes);
  app.route("/", busRoutes);
  app.route("/", auditRoutes(options));
  app.route("/", accessRoutes);
  app.route("/", policyRoutes);
  app.route("/", grantRoutes);
  app.route("/", decisionRoutes);
  app.route("/", feedRoutes(options));
  app.route("/", automationRoutes);
  app.route("/", webhookRoutes);
  app.route("/", incidentRoutes);
  app.route("/", integrationRoutes);
  app.route("/", trafficRoutes);
  app.route("/", liveRoutes(options));
  app.route("/", consoleRoutes(options.consoleDir ?? builtConsole));
  // The interactive reference: Scalar renders /openapi.json in the browser, from bundled assets.
  app.route("/", docsRoutes);
  const asyncApi = asyncApiDocument();
  app.get("/asyncapi.json", (c) => c.json(asyncApi));
  const config = {
    openapi: "3.1.0",
    info: {
      title: "simroot API",
      version: "0.1.0",
      description: "SIM-rooted Zero Trust control plane for IoT fleets",
      license: { name: "Apache-2.0", identifier: "Apache-2.0" },
    },
    security: [{ apiKey: [] }],
  };
  for (const [name, scheme] of Object.entries(securitySchemes)) app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  let document: unknown;
  app.get("/openapi.json", (c) => c.json((document ??= completeDocument(app.getOpenAPI31Document(config)))));
  return app;
}
