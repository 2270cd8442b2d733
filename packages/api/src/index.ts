export { createApp } from "./app.ts";
export { consoleLog, type AppLog, type AppOptions, type HealthCheck } from "./env.ts";
export type { RouteGroup } from "./compose.ts";
