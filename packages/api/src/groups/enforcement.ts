/** What enforcement points call and what checks them, all signed with the feed's key: the feed, its keys and epoch, flow reports, the audit trail, the live view; and the time-limited grants PEPs enforce. */
import type { RouteGroup } from "../compose.ts";
import { auditRoutes } from "../routes/audit.ts";
import { grantRoutes } from "../routes/grant.ts";
import { feedRoutes } from "../routes/feed.ts";
import { liveRoutes } from "../routes/live.ts";

export const enforcementRoutes: readonly RouteGroup[] = [feedRoutes, auditRoutes, liveRoutes, () => grantRoutes];
