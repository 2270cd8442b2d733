import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import type { RequestContext } from "../context.ts";
import { SimrootError } from "../error.ts";
import { sameValue } from "../patch.ts";
import { domainEvent } from "../event/event.ts";
import { newId } from "../id.ts";
import type { Ports } from "../ports.ts";
import { storedForm } from "../store/form.ts";
import { verb } from "../verb.ts";
import { actingKeyHolds, actingKeyRevoked, mintApiKey } from "./api-key.ts";
import { appliedRateLimits, rateLimitCeilingSettings, rateLimitCeilings, tenantRateLimits, type RateLimitCeilings } from "../config.ts";
import { assertPolicySize, enforcementKey } from "../policy/records.ts";
import { readEnforcement } from "../policy/enforcement-store.ts";
import { refuseLegacyForms } from "../policy/model.ts";
import {
  defaultTenantSettings,
  forgetTenantSettings,
  tenantItemKey,
  tenantSettingsPatchSchema,
  tenantSettingsSchema,
} from "./tenant-settings.ts";

/** The tenant, its settings as set (the API answers `tenantViewSchema`). */
export const tenantSchema = z.object({
  id: z.string(),
  name: z.string(),
  settings: tenantSettingsSchema,
  /** The tenant whose admins may create other tenants (the first one `npm start` creates). */
  platform: z.boolean().optional(),
  createdAt: z.string(),
  revision: z.number().int().default(1),
});
export type Tenant = z.output<typeof tenantSchema>;

const limitsByName = (description: string) =>
  z
    .object({ apiKeyPerMinute: z.number().int(), pepKeyPerMinute: z.number().int(), sourcePerMinute: z.number().int() })
    .meta({ description });

/** The tenant as the API answers it: with the rate limits applied, which `settings.rateLimits` alone does not tell. */
export const tenantViewSchema = tenantSchema
  .extend({
    appliedRateLimits: limitsByName(
      "the rate limits counted now, requests a minute: each of `settings.rateLimits` held to the deployment's ceiling " +
        "(`rateLimitCeilings`). Lower than the setting when the operator lowered a ceiling below it since it was set",
    ),
    tenantRateLimits: z
      .object({ apiKeysPerMinute: z.number().int(), pepKeysPerMinute: z.number().int(), sourcesPerMinute: z.number().int() })
      .meta({
        description:
          "what the tenant's requests may add up to a minute over all its credentials of a kind, set by the deployment " +
          "(SIMROOT_RATE_LIMIT_TENANT_API_KEYS_PER_MINUTE, _PEP_KEYS_PER_MINUTE, _SOURCES_PER_MINUTE), not by the tenant: " +
          'past one, `429 rate.limited` with the policy `"tenant"`',
      }),
    rateLimitCeilings: limitsByName(
      "the deployment's ceilings on the rate limits (SIMROOT_RATE_LIMIT_MAX_API_KEY_PER_MINUTE, _PEP_KEY_PER_MINUTE, _SOURCE_PER_MINUTE): " +
        "a setting above one is refused (400 tenant_settings.rate_limit_above_ceiling), one stored above it is held to it",
    ),
  })
  .meta({ id: "Tenant" });
export type TenantView = z.output<typeof tenantViewSchema>;

/** The tenant with the rate limits applied now and the ceilings that hold them (config.ts, read as the limiter reads them). */
export function tenantView(tenant: Tenant): TenantView {
  const ceilings = rateLimitCeilings();
  return {
    ...tenant,
    appliedRateLimits: appliedRateLimits(tenant.settings.rateLimits, ceilings),
    tenantRateLimits: tenantRateLimits(),
    rateLimitCeilings: ceilings,
  };
}

/**
 * The stored form of the tenant item this code reads and writes (its `format`, store/form.ts; an item without one is of
 * form 1). A change of the settings rewrites the item whole from what the changing code knows of it: code of the release
 * before a new setting put the item back without it, silently (review 143). Code older than the form refuses the item
 * (503 `store.newer_format`) and changes nothing. The settings read for each event and request (`tenantSettings`) are
 * read as this code knows them: they rewrite nothing.
 */
export const tenantFormat = 1;

/**
 * Creates a tenant with its first admin key; the key's token is returned this once only.
 * The creation is the first record of the new tenant's audit trail (actor: who created it).
 */
export async function createTenantWithAdminKey(ports: Ports, name: string, guard?: { pk: string; sk: string }, creator?: RequestContext) {
  const now = ports.now();
  const tenant: Tenant = {
    id: newId("tenant", now.getTime()),
    name,
    settings: defaultTenantSettings,
    ...(guard ? { platform: true } : {}),
    createdAt: now.toISOString(),
    revision: 1,
  };
  const key = mintApiKey(tenant.id, "admin", `${name} admin`, ports.tables, now);
  const ctx: RequestContext = {
    tenantId: tenant.id,
    actor: creator ? `${creator.actor}@${creator.tenantId}` : "system:bootstrap",
    requestId: creator?.requestId ?? `req_bootstrap_${tenant.id}`,
  };
  const event = domainEvent(
    ctx,
    "tenant.created",
    tenant.id,
    { tenantId: tenant.id, name, adminKeyId: key.record.keyId, ...(guard ? { platform: true } : {}) },
    now,
  );
  await ports.ledger.commit({
    tenantId: tenant.id,
    writes: [
      {
        Put: {
          TableName: ports.tables.control,
          Item: { ...tenantItemKey(tenant.id), gsi1pk: "tenants", gsi1sk: tenant.id, ...tenant, format: tenantFormat },
          ConditionExpression: "attribute_not_exists(pk)",
        },
      },
      key.put,
      ...(guard
        ? [
            {
              Put: {
                TableName: ports.tables.control,
                Item: { ...guard, tenantId: tenant.id },
                ConditionExpression: "attribute_not_exists(pk)",
              },
            },
          ]
        : []),
      // The platform admin's key still holds when the tenant and its admin token come to be (review 136: a key revoked
      // through another instance, still cached on this one for its second, made a tenant whose token nothing revoked).
      ...(creator ? actingKeyHolds(ports, creator) : []),
    ],
    events: [event],
    onConditionFailed: (index) => (creator && index === 2 + (guard ? 1 : 0) ? actingKeyRevoked() : undefined),
  });
  return { tenant, token: key.token, keyId: key.record.keyId };
}

/**
 * The tenant, its fail mode read from the one place it lives: the enforcement settings (the
 * tenant settings show it and change it there, so enforcement points follow one value).
 */
export async function readTenant(ports: Ports, tenantId: string): Promise<Tenant> {
  return shownTenant(await readTenantParts(ports, tenantId));
}

/** The tenant item as stored and the enforcement settings, each with its own revision. */
async function readTenantParts(ports: Ports, tenantId: string) {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: tenantItemKey(tenantId), ConsistentRead: true }),
  );
  if (!Item) throw new SimrootError("tenant.not_found", "not_found", `No tenant ${tenantId}`);
  return {
    stored: tenantSchema.parse(storedForm(Item, tenantFormat, `Tenant ${tenantId}`)),
    enforcement: await readEnforcement(ports, tenantId),
  };
}

/**
 * The tenant as the API shows it: its settings carry the fail mode, so its revision (the ETag an If-Match names) moves
 * when either item does, the sum of both (each only grows). A client that read the settings, then sends them back
 * after a PUT /v1/enforcement changed the fail mode, is refused (412) instead of putting the former fail mode back.
 */
const shownTenant = ({ stored, enforcement }: Awaited<ReturnType<typeof readTenantParts>>): Tenant => ({
  ...stored,
  settings: { ...stored.settings, failMode: enforcement.failMode },
  revision: stored.revision + enforcement.revision,
});

/** The tenant settings as stored and carried in the feed: without the fail mode, which the enforcement settings hold. */
export const storedTenantSettings = ({ failMode: _failMode, ...settings }: Tenant["settings"]) => settings;

/** Only an admin of the platform tenant creates tenants. */
export const createTenant = verb(z.strictObject({ name: z.string().min(1).max(128) }), async (ports, ctx, input) => {
  if (!(await readTenant(ports, ctx.tenantId)).platform) {
    throw new SimrootError("tenant.platform_only", "forbidden", "Only the platform tenant's admins create tenants");
  }
  return createTenantWithAdminKey(ports, input.name, undefined, ctx);
});

export const updateTenantSettingsInput = z.object({
  settings: tenantSettingsPatchSchema,
  /** The revision the caller saw (If-Match). */
  ifRevision: z.number().int().positive(),
});

/** Refuses a rate limit above the deployment's ceiling (config.ts `rateLimitCeilings`), naming each one it passes. */
function assertWithinCeilings(limits: Partial<RateLimitCeilings> | undefined) {
  const ceilings = rateLimitCeilings();
  const above = Object.entries(limits ?? {}).flatMap(([name, value]) => {
    const ceiling = ceilings[name as keyof RateLimitCeilings];
    return value !== undefined && value > ceiling
      ? [
          {
            path: `rateLimits.${name}`,
            message: `at most ${ceiling} (the deployment's ceiling, ${rateLimitCeilingSettings[name as keyof RateLimitCeilings]})`,
          },
        ]
      : [];
  });
  if (above.length === 0) return;
  throw new SimrootError(
    "tenant_settings.rate_limit_above_ceiling",
    "input",
    `A rate limit is above the deployment's ceiling: ${above.map((issue) => `${issue.path} ${issue.message}`).join("; ")}`,
    { issues: above },
  );
}

/** Changes settings under an If-Match revision; audited. */
export const updateTenantSettings = verb(updateTenantSettingsInput, async (ports, ctx: RequestContext, input) => {
  refuseLegacyForms(input.settings);
  assertWithinCeilings(input.settings.rateLimits);
  // One read of each item: the revision checked, the settings built and the writes' conditions all rest on it. The fail
  // mode lives in the enforcement settings, which PUT /v1/enforcement changes too; building the settings from an earlier
  // read than the write's condition put back a fail mode a concurrent PUT had just changed (fail-closed to fail-open).
  const parts = await readTenantParts(ports, ctx.tenantId);
  const { stored: item, enforcement } = parts;
  const tenant = shownTenant(parts);
  if (tenant.revision !== input.ifRevision) {
    throw new SimrootError("request.precondition_failed", "conflict", "The tenant changed since you read it", { detail: { status: 412 } });
  }
  const settings = tenantSettingsSchema.parse({
    ...tenant.settings,
    ...input.settings,
    rateLimits: { ...tenant.settings.rateLimits, ...input.settings.rateLimits },
  });
  // Its change's event carries the settings whole (country rules' selectors have no bound of their own): review 74.
  assertPolicySize("tenant_settings", settings, "countryRules");
  const moves = enforcement.revision === 0 && enforcement.failMode !== defaultTenantSettings.failMode;
  if (!moves && sameValue(settings, tenant.settings)) return { value: tenant, events: [] };
  const next: Tenant = { ...item, settings, revision: item.revision + 1 };
  const now = ports.now();
  const event = domainEvent(ctx, "tenant.settings-changed", ctx.tenantId, { settings, changed: Object.keys(input.settings) }, now);
  const stored = storedTenantSettings(settings);
  // The fail mode is written where it lives, in the same commit: the enforcement settings (and their feed entry). Until
  // they were first written, a tenant item of before may hold it: it moves there now, since the tenant item drops it.
  const failMode = moves || enforcement.failMode !== settings.failMode ? { ...enforcement, failMode: settings.failMode } : undefined;
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    writes: [
      {
        Put: {
          TableName: ports.tables.control,
          Item: { ...tenantItemKey(tenant.id), gsi1pk: "tenants", gsi1sk: tenant.id, ...next, settings: stored, format: tenantFormat },
          ConditionExpression: "revision = :r",
          ExpressionAttributeValues: { ":r": item.revision },
        },
      },
      ...(failMode
        ? [
            {
              Put: {
                TableName: ports.tables.control,
                Item: { ...enforcementKey(ctx.tenantId), ...failMode, revision: failMode.revision + 1, updatedAt: now.toISOString() },
                ...(failMode.revision === 0
                  ? { ConditionExpression: "attribute_not_exists(pk)" }
                  : { ConditionExpression: "revision = :e", ExpressionAttributeValues: { ":e": failMode.revision } }),
              },
            },
          ]
        : []),
    ],
    events: [event],
    feed: [
      { kind: "settings", key: "tenant", value: stored },
      ...(failMode
        ? [
            {
              kind: "settings" as const,
              key: "enforcement",
              value: { quarantineDestinations: failMode.quarantineDestinations, failMode: failMode.failMode },
            },
          ]
        : []),
    ],
    onConditionFailed: () =>
      new SimrootError("request.precondition_failed", "conflict", "The tenant changed since you read it", { detail: { status: 412 } }),
  });
  forgetTenantSettings(ctx.tenantId);
  return { value: { ...next, revision: next.revision + enforcement.revision + (failMode ? 1 : 0) }, events: [event] };
});
