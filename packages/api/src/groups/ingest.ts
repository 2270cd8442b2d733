/** Ingestion: operator webhooks in (every adapter, the ASN.1 of eIM notifications), their sources, and the events parked for replay. */
import type { RouteGroup } from "../compose.ts";
import { ingestRoutes as ingest } from "../routes/ingest.ts";
import { parkedRoutes } from "../routes/parked.ts";
import { sourceRoutes } from "../routes/source.ts";

export const ingestRoutes: readonly RouteGroup[] = [() => sourceRoutes, () => ingest, () => parkedRoutes];
