export { createApp } from "./app.ts";
export type { AppOptions, HealthCheck } from "./env.ts";
