/**
 * Policy: segments' rules and the decisions they make (what a connection would be answered), apart from the management
 * API for its size; and the traffic the PEPs report, which a policy's preview is judged against (taken from the
 * automation function, whose bundle had no room left); and the time-limited grants PEPs enforce (from the enforcement
 * function, for the same reason).
 */
import type { RouteGroup } from "../compose.ts";
import { decisionRoutes } from "../routes/decision.ts";
import { grantRoutes } from "../routes/grant.ts";
import { policyRoutes as policies } from "../routes/policy.ts";
import { trafficRoutes } from "../routes/traffic.ts";

export const policyRoutes: readonly RouteGroup[] = [() => policies, () => decisionRoutes, () => trafficRoutes, () => grantRoutes];
