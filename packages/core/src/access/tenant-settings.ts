import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { countriesSchema } from "../identity/identity-state.ts";
import { labelSelectorSchema } from "../policy/model.ts";
import type { Ports } from "../ports.ts";
import { Lru } from "../store/lru.ts";
import { someChange } from "../patch.ts";

const imeiLock = z.boolean().meta({ description: "quarantine a device when its IMEI changes (devices may override)" });
const allowedCountries = countriesSchema.meta({ description: "countries devices may roam into; empty means anywhere" });
const countryRules = z
  .array(z.strictObject({ selector: labelSelectorSchema, allowedCountries: countriesSchema }))
  .max(50)
  .meta({
    description:
      "allowed countries for the devices a label selector matches (the first matching rule wins; a device's own list wins over all)",
  });
const failMode = z
  .enum(["closed", "open"])
  .meta({ description: "what enforcement points do when they cannot decide (the enforcement settings' fail mode)" });

const perMinute = (who: string) =>
  z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .meta({
      description: `requests per minute ${who} may make; past it, 429 with Retry-After until the minute ends. At most the deployment's ceiling (400 tenant_settings.rate_limit_above_ceiling above it)`,
    });
export const defaultRateLimits = { apiKeyPerMinute: 6_000, pepKeyPerMinute: 120_000, sourcePerMinute: 6_000 } as const;
const rateLimits = z
  .strictObject({
    apiKeyPerMinute: perMinute("each API key of the tenant").default(defaultRateLimits.apiKeyPerMinute),
    pepKeyPerMinute: perMinute(
      "each enforcement point key (a fleet of PEPs may share one: 1,000 PEPs re-polling every 4 s make 15,000 a minute)",
    ).default(defaultRateLimits.pepKeyPerMinute),
    sourcePerMinute: perMinute("each ingestion source of the tenant (one webhook request carries up to 1,000 events)").default(
      defaultRateLimits.sourcePerMinute,
    ),
  })
  .meta({
    description:
      "rate limits per API key and per source, held across every instance of the control plane, each at most the deployment's ceiling " +
      "(60,000, 600,000 and 60,000 a minute unless the operator set others); a limit stored above its ceiling is held to it",
  });
const rateLimitsPatch = z.strictObject({
  apiKeyPerMinute: perMinute("each API key of the tenant").optional(),
  pepKeyPerMinute: perMinute("each enforcement point key").optional(),
  sourcePerMinute: perMinute("each ingestion source of the tenant").optional(),
});

export const tenantSettingsSchema = z
  .object({
    imeiLock: imeiLock.default(true),
    allowedCountries: allowedCountries.default([]),
    countryRules: countryRules.default([]),
    failMode: failMode.default("closed"),
    rateLimits: rateLimits.default(defaultRateLimits),
  })
  .meta({ id: "TenantSettings" });
/** A change of some settings: what is absent stays as it is (no defaults fill it in). */
export const tenantSettingsPatchSchema = someChange(
  z.strictObject({
    imeiLock: imeiLock.optional(),
    allowedCountries: allowedCountries.optional(),
    countryRules: countryRules.optional(),
    failMode: failMode.optional(),
    /** Only the limits given change; the other keeps its value. */
    rateLimits: rateLimitsPatch.optional(),
  }),
);
export type TenantSettings = z.output<typeof tenantSettingsSchema>;

export const defaultTenantSettings: TenantSettings = tenantSettingsSchema.parse({});

export const tenantItemKey = (tenantId: string) => ({ pk: `T#${tenantId}`, sk: "tenant" });

/** Per process: at most this many tenants, each at most `cacheMs` old (another instance's change shows within 5 s). */
const cache = new Lru<string, { settings: TenantSettings; until: number }>(10_000);
const cacheMs = 5_000;

/** Reads under way per tenant (keyed as the cache is): a herd of requests that miss together shares one read. */
const reading = new Map<string, Promise<TenantSettings>>();

/** A tenant's settings, cached for a few seconds: they change rarely and are read for every event. */
export async function tenantSettings(ports: Ports, tenantId: string): Promise<TenantSettings> {
  const hit = cache.get(tenantId);
  if (hit && hit.until > Date.now()) return hit.settings;
  const shared = reading.get(tenantId);
  if (shared) return shared;
  const read: Promise<TenantSettings> = ports.db
    // Consistent: after this instance changed them (`forgetTenantSettings`) the next read must see the change.
    .send(new GetCommand({ TableName: ports.tables.control, Key: tenantItemKey(tenantId), ConsistentRead: true }))
    .then(({ Item }) => {
      const settings = tenantSettingsSchema.parse(Item?.settings ?? {});
      // Not kept when this instance changed the settings meanwhile (`forgetTenantSettings`): the read may predate it.
      if (reading.get(tenantId) === read) cache.set(tenantId, { settings, until: Date.now() + cacheMs });
      return settings;
    })
    .finally(() => {
      if (reading.get(tenantId) === read) reading.delete(tenantId);
    });
  reading.set(tenantId, read);
  return read;
}

/** Forgets a tenant's settings (this instance changed them): a read under way is neither joined nor kept. */
export const forgetTenantSettings = (tenantId: string) => {
  cache.delete(tenantId);
  reading.delete(tenantId);
};
