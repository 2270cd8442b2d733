/** Continuous verification (`/v1/automation*`, `/v1/webhooks*`, `/v1/incidents*`, integrations, the bus's dead letters). */
import { automationRoutes } from "@simroot/api/groups/automation";
import { environmentRedeliver, type Ports } from "@simroot/core";
import { apiFunction } from "./lib/api-function.ts";
import { lambdaPortsWithSecrets } from "./lib/secrets.ts";

// Webhook subscriptions seal their signing secrets; a redrive hands a dead letter back to its rule's consumer (Lambda Invoke).
let ports: Ports | undefined;
const automationPorts = (): Ports => {
  if (ports) return ports;
  const redeliver = environmentRedeliver();
  ports = { ...lambdaPortsWithSecrets(), ...(redeliver ? { redeliver } : {}) };
  return ports;
};

export const { app, handler } = apiFunction(automationRoutes, { ports: automationPorts });
