import { handle } from "hono/aws-lambda";
import { createApp } from "@simroot/api";
import { busName, runtimePorts, storeHealth } from "@simroot/core";

export const handler = handle(
  createApp({
    ports: runtimePorts,
    logRequests: true,
    health: {
      store: () => storeHealth(runtimePorts()),
      // EventBridge has no cheap read probe with PutEvents-only permissions: report what is configured.
      bus: async () => ({ status: "ok", detail: { kind: "eventbridge", bus: busName(), probed: false } }),
    },
  }),
);
