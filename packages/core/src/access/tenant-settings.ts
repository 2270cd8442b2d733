import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { Ports } from "../ports.ts";

const imeiLock = z.boolean().meta({ description: "quarantine a device when its IMEI changes (devices may override)" });
const allowedCountries = z
  .array(z.string().regex(/^[A-Z]{2}$/, "ISO 3166-1 alpha-2"))
  .max(250)
  .meta({ description: "countries devices may roam into; empty means anywhere" });
const failMode = z.enum(["closed", "open"]).meta({ description: "what enforcement points do when they cannot decide (the enforcement settings' fail mode)" });

export const tenantSettingsSchema = z
  .object({ imeiLock: imeiLock.default(true), allowedCountries: allowedCountries.default([]), failMode: failMode.default("closed") })
  .meta({ id: "TenantSettings" });
/** A change of some settings: what is absent stays as it is (no defaults fill it in). */
export const tenantSettingsPatchSchema = z.strictObject({ imeiLock: imeiLock.optional(), allowedCountries: allowedCountries.optional(), failMode: failMode.optional() });
export type TenantSettings = z.output<typeof tenantSettingsSchema>;

export const defaultTenantSettings: TenantSettings = tenantSettingsSchema.parse({});

export const tenantItemKey = (tenantId: string) => ({ pk: `T#${tenantId}`, sk: "tenant" });

const cache = new Map<string, { settings: TenantSettings; until: number }>();
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
