/** Policy: segments' rules and the decisions they make (what a connection would be answered), apart from the management API for its size. */
import type { RouteGroup } from "../compose.ts";
import { decisionRoutes } from "../routes/decision.ts";
import { policyRoutes as policies } from "../routes/policy.ts";

export const policyRoutes: readonly RouteGroup[] = [() => policies, () => decisionRoutes];
