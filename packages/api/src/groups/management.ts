/** The management API: devices, policy, access, decisions, and what documents the API (the `$default` route in AWS). */
import type { RouteGroup } from "../compose.ts";
import { accessRoutes } from "../routes/access.ts";
import { decisionRoutes } from "../routes/decision.ts";
import { deviceRoutes } from "../routes/device.ts";
import { healthRoutes } from "../routes/health.ts";
import { policyRoutes } from "../routes/policy.ts";
import { referenceRoutes } from "../routes/reference.ts";

export const managementRoutes: readonly RouteGroup[] = [
  healthRoutes,
  () => deviceRoutes,
  () => accessRoutes,
  () => policyRoutes,
  () => decisionRoutes,
  referenceRoutes,
];
