import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { countriesSchema } from "../identity/identity-state.ts";
import { labelSelectorSchema } from "../policy/model.ts";
import type { Ports } from "../ports.ts";
import { Lru } from "../store/lru.ts";

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

export const tenantSettingsSchema = z
  .object({
    imeiLock: imeiLock.default(true),
    allowedCountries: allowedCountries.default([]),
    countryRules: countryRules.default([]),
    failMode: failMode.default("closed"),
  })
  .meta({ id: "TenantSettings" });
/** A change of some settings: what is absent stays as it is (no defaults fill it in). */
export const tenantSettingsPatchSchema = z.strictObject({
  imeiLock: imeiLock.optional(),
  allowedCountries: allowedCountries.optional(),
  countryRules: countryRules.optional(),
  failMode: failMode.optional(),
});
export type TenantSettings = z.output<typeof tenantSettingsSchema>;

export const defaultTenantSettings: TenantSettings = tenantSettingsSchema.parse({});

export const tenantItemKey = (tenantId: string) => ({ pk: `T#${tenantId}`, sk: "tenant" });

/** Per process: at most this many tenants, each at most `cacheMs` old (another instance's change shows within 5 s). */
const cache = new Lru<string, { settings: TenantSettings; until: number }>(10_000);
const cacheMs = 5_000;

/** A tenant's settings, cached for a few seconds: they change rarely and are read for every event. */
export async function tenantSettings(ports: Ports, tenantId: string): Promise<TenantSettings> {
  const hit = cache.get(tenantId);
  if (hit && hit.until > Date.now()) return hit.settings;
  const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: tenantItemKey(tenantId) }));
  const settings = tenantSettingsSchema.parse(Item?.settings ?? {});
  cache.set(tenantId, { settings, until: Date.now() + cacheMs });
  return settings;
}

export const forgetTenantSettings = (tenantId: string) => cache.delete(tenantId);
