/** The management API: devices, access, and what documents the API (the `$default` route in AWS). Policy is its own group (policy.ts). */
import type { RouteGroup } from "../compose.ts";
import { accessRoutes } from "../routes/access.ts";
import { deviceRoutes } from "../routes/device.ts";
import { healthRoutes } from "../routes/health.ts";
import { referenceRoutes } from "../routes/reference.ts";

export const managementRoutes: readonly RouteGroup[] = [healthRoutes, () => deviceRoutes, () => accessRoutes, referenceRoutes];
