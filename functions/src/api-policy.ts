/** Policy (`/v1/policies*`, `/v1/decisions/*`, `/v1/enforcement`) and the traffic PEPs report (`/v1/traffic`, `/v1/source-health`): segments' rules, the decisions they make, the flows they are previewed against. */
import { policyRoutes } from "@simroot/api/groups/policy";
import { apiFunction } from "./lib/api-function.ts";
import { lambdaPorts } from "./lib/ports.ts";

export const { app, handler } = apiFunction(policyRoutes, { ports: lambdaPorts });
