/**
 * What enforcement points call and what checks them, all signed with the feed's key: the feed, its keys and epoch, flow
 * reports, the audit trail, the live view. (The time-limited grants PEPs enforce are policy's since 2026-12-07, which
 * took them for the tenant-wide rate limits' room: this bundle is the one every PEP's poll cold-starts.)
 */
import type { RouteGroup } from "../compose.ts";
import { auditRoutes } from "../routes/audit.ts";
import { feedRoutes } from "../routes/feed.ts";
import { liveRoutes } from "../routes/live.ts";

export const enforcementRoutes: readonly RouteGroup[] = [feedRoutes, auditRoutes, liveRoutes];
