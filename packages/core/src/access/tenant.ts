import { z } from "zod";
import { newId } from "../id.ts";
import type { Ports } from "../ports.ts";
import { writeTransaction } from "../store/transaction.ts";
import { mintApiKey } from "./api-key.ts";
import { defaultTenantSettings, tenantItemKey, tenantSettingsSchema } from "./tenant-settings.ts";

export const tenantSchema = z
  .object({ id: z.string(), name: z.string(), settings: tenantSettingsSchema, createdAt: z.string() })
  .meta({ id: "Tenant" });
export type Tenant = z.output<typeof tenantSchema>;


/** Creates a tenant with its first admin key; the key's token is returned this once only. */
export async function createTenantWithAdminKey(ports: Ports, name: string, guard?: { pk: string; sk: string }) {
  const now = ports.now();
  const tenant: Tenant = { id: newId("tenant", now.getTime()), name, settings: defaultTenantSettings, createdAt: now.toISOString() };
  const key = mintApiKey(tenant.id, "admin", `${name} admin`, ports.tables, now);
  await writeTransaction(ports.db, [
    {
      Put: {
        TableName: ports.tables.control,
        Item: { ...tenantItemKey(tenant.id), gsi1pk: "tenants", gsi1sk: tenant.id, ...tenant },
        ConditionExpression: "attribute_not_exists(pk)",
      },
    },
    key.put,
    ...(guard
      ? [{ Put: { TableName: ports.tables.control, Item: { ...guard, tenantId: tenant.id }, ConditionExpression: "attribute_not_exists(pk)" } }]
      : []),
  ]);
  return { tenant, token: key.token, keyId: key.record.keyId };
}
