/** Continuous verification and its integrations: rules, webhooks, incidents, integrations (the audit trail and flows as OCSF events for a SIEM among them), and the dead letters of the rules' consumers. Traffic is served with policy (policy.ts). */
import type { RouteGroup } from "../compose.ts";
import { automationRoutes as rules } from "../routes/automation.ts";
import { busRoutes } from "../routes/bus.ts";
import { incidentRoutes } from "../routes/incident.ts";
import { integrationRoutes } from "../routes/integration.ts";
import { ocsfRoutes } from "../routes/ocsf.ts";
import { webhookRoutes } from "../routes/webhook.ts";

export const automationRoutes: readonly RouteGroup[] = [
  () => rules,
  () => webhookRoutes,
  () => incidentRoutes,
  () => integrationRoutes,
  () => ocsfRoutes,
  () => busRoutes,
];
