/** Policy (`/v1/policies*` but the traffic preview, `/v1/decisions/*`): segments' rules and the decisions they make. */
import { policyRoutes } from "@simroot/api/groups/policy";
import { apiFunction } from "./lib/api-function.ts";
import { lambdaPorts } from "./lib/ports.ts";

export const { app, handler } = apiFunction(policyRoutes, { ports: lambdaPorts });
