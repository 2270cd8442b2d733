/**
 * Which events a role may read, for what simroot sends on a key's behalf: a webhook subscription is delivered only the
 * events the role recorded on it may read through the API (review 87). An operator key may subscribe, but may not list
 * keys or sources or read the audit trail; its subscription to `{ "source": ["simroot"] }` was sent every `key.created`
 * (a key's name, role and selector), `source.created` (trust anchors' subjects and fingerprints) and the like.
 *
 * The list is derived from the API's reads (README, Roles): an event is withheld when what it tells is read only by
 * admins. The rest of what a tenant's events tell, an operator reads through the API: devices, policies, grants, rules,
 * webhooks, incidents, the enforcement settings and the tenant's settings (`GET /v1/enforcement`, `GET /v1/tenant`, so
 * `enforcement.updated` and `tenant.settings-changed` are sent), source health (`GET /v1/source-health`, so
 * `ingest.refused`, a source's refused items, is sent too).
 */
import type { RequestContext } from "../context.ts";
import { matchesPattern } from "../event/pattern.ts";
import type { EventPattern } from "../platform/rules.ts";
import type { Role } from "./api-key.ts";

/** The event types only admins read, each with the admin-only API that reads what it tells. */
export const adminOnlyEventTypes: ReadonlySet<string> = new Set([
  "key.created", // /v1/keys: a key's name, role and selector
  "key.rotated", // /v1/keys
  "key.revoked", // /v1/keys
  "tenant.created", // /v1/keys and /v1/tenants: the tenant's first admin key
  "source.created", // /v1/sources: a source's format, trust anchors' subjects and fingerprints
  "source.credentials-rotated", // /v1/sources
  "source.deleted", // /v1/sources
  "feed.epoch-advanced", // /v1/feed/epoch, the feed: admins' and PEPs'
]);

/**
 * The event types an event tells of: its own, and that of the event it records something about (an integration's sync
 * `data.cause.type`, a rule's firing or a redriven dead letter `data.eventType`), which it names with that event's id and
 * actor.
 */
export function typesToldBy(event: { readonly type: string; readonly data?: unknown }): string[] {
  const data = (event.data ?? {}) as { cause?: { type?: unknown }; eventType?: unknown; toldTypes?: unknown };
  // `toldTypes`: what the event a record is about tells in turn (a rule's firing on a redrive of a key's creation:
  // review 98, one level down it named the key to an operator's subscription).
  const nested = Array.isArray(data.toldTypes) ? data.toldTypes : [];
  return [...new Set([event.type, data.cause?.type, data.eventType, ...nested].filter((type): type is string => typeof type === "string"))];
}

/**
 * `toldTypes` for a record about `event` (a rule's firing on it, its redrive), when it tells more than its own type:
 * the record tells them too, and is held back from whoever may not read one of them.
 */
export function toldBy(event: { readonly type: string; readonly data?: unknown }): { toldTypes?: string[] } {
  const told = typesToldBy(event);
  return told.length > 1 ? { toldTypes: told } : {};
}

/**
 * Whether `role` may read `event`. Only admins read the admin-only events; every other role is held to an operator's
 * reads here: only admins and operators subscribe (`POST /v1/webhooks`), and a viewer or PEP is never sent more.
 */
export const mayReadEvent = (role: Role, event: { readonly type: string; readonly data?: unknown }): boolean =>
  role === "admin" || !typesToldBy(event).some((type) => adminOnlyEventTypes.has(type));

/**
 * The role a rule or subscription acts as when none is recorded: one made before roles were (review 87 for
 * subscriptions, review 90 for rules). Admins and operators have made both since the API had them: such a one is an
 * operator's, the lesser of the two, until an admin changes it.
 */
export const unrecordedRole: Role = "operator";
/** The role a rule or subscription made or changed in `ctx` acts as: the acting key's, or an operator's when no key acts. */
export const actingRole = (ctx: RequestContext): Role => ctx.role ?? unrecordedRole;

type Pattern = { readonly [key: string]: unknown };
const isPattern = (value: unknown): value is Pattern => typeof value === "object" && value !== null && !Array.isArray(value);
/** Whether a pattern's type conditions (`detail-type`, `detail.type`, in every `$or` branch) refuse events of `type`. */
function refusesType(pattern: Pattern, type: string): boolean {
  const refuses = (conditions: unknown, field: string) =>
    Array.isArray(conditions) && !matchesPattern({ [field]: conditions } as EventPattern, { [field]: type });
  if (refuses(pattern["detail-type"], "detail-type")) return true;
  const detail = pattern.detail;
  if (isPattern(detail)) {
    if (refuses(detail.type, "type")) return true;
    const branches = detail.$or;
    if (Array.isArray(branches) && branches.every((branch) => isPattern(branch) && refuses(branch.type, "type"))) return true;
  }
  const branches = pattern.$or;
  return Array.isArray(branches) && branches.every((branch) => isPattern(branch) && refusesType(branch, type));
}

/**
 * Why `role` may not hold `pattern` (a rule's, review 90): the first admin-only event type it may match, told at the
 * field that would have to refuse it, or undefined. A pattern naming no type matches every type. Told of by type alone:
 * a record naming such an event (`typesToldBy`) is held back when it comes (`mayReadEvent`).
 */
export function unreadablePatternMatch(role: Role, pattern: Pattern): { path: string; message: string } | undefined {
  if (role === "admin") return undefined;
  const type = [...adminOnlyEventTypes].find((each) => !refusesType(pattern, each));
  if (!type) return undefined;
  const detail = isPattern(pattern.detail) ? pattern.detail : {};
  const path = "detail-type" in pattern ? "detail-type" : "type" in detail ? "detail.type" : "$or" in pattern ? "$or" : "";
  const message =
    `a pattern of the ${role} role may not match ${type}, which only admins read` +
    (path ? "" : ": name the event types it matches in detail-type");
  return { path, message };
}
