/** The management API (`$default`): devices, policy, access, health, and what documents the API. */
import { managementRoutes } from "@simroot/api/groups/management";
import { busName, storeHealth } from "@simroot/core";
import { apiFunction } from "./lib/api-function.ts";
import { lambdaPorts } from "./lib/ports.ts";

export const { app, handler } = apiFunction(managementRoutes, {
  ports: lambdaPorts,
  health: {
    store: () => storeHealth(lambdaPorts()),
    // EventBridge has no cheap read probe with PutEvents-only permissions: report what is configured.
    bus: async () => ({ status: "ok", detail: { kind: "eventbridge", bus: busName(), probed: false } }),
  },
});
