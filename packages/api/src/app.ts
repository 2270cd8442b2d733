import { composeApp } from "./compose.ts";
import type { AppOptions } from "./env.ts";
import { automationRoutes } from "./groups/automation.ts";
import { enforcementRoutes } from "./groups/enforcement.ts";
import { ingestRoutes } from "./groups/ingest.ts";
import { managementRoutes } from "./groups/management.ts";
import { policyRoutes } from "./groups/policy.ts";

/** Every route group, in the order the whole API registers them. */
export const routeGroups = {
  management: managementRoutes,
  policy: policyRoutes,
  ingest: ingestRoutes,
  enforcement: enforcementRoutes,
  automation: automationRoutes,
};

/**
 * The whole API in one app: served by @hono/node-server locally. In AWS each group is its own
 * function (core's platform definition routes its paths there), built with `composeApp`.
 */
export function createApp(options: AppOptions) {
  return composeApp(options, Object.values(routeGroups).flat());
}
