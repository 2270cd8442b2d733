/** Ingestion (`/v1/ingest/*`, `/v1/sources*`, `/v1/dead-letters*`): operator webhooks in, their sources, parked events. */
import { ingestRoutes } from "@simroot/api/groups/ingest";
import { apiFunction } from "./lib/api-function.ts";
import { lambdaPorts } from "./lib/ports.ts";

export const { app, handler } = apiFunction(ingestRoutes, { ports: lambdaPorts });
