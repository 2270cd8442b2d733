import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { Ports } from "../ports.ts";
import { Lru } from "../store/lru.ts";

export const tenantSettingsSchema = z
  .object({
    imeiLock: z.boolean().default(true).meta({ description: "quarantine a device when its IMEI changes (devices may override)" }),
    allowedCountries: z
      .array(z.string().regex(/^[A-Z]{2}$/, "ISO 3166-1 alpha-2"))
      .max(250)
      .default([])
      .meta({ description: "countries devices may roam into; empty means anywhere" }),
    failMode: z.enum(["closed", "open"]).default("closed").meta({ description: "what enforcement points do when they cannot decide" }),
  })
  .meta({ id: "TenantSettings" });
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
