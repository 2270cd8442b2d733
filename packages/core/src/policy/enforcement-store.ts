/**
 * A tenant's enforcement settings: the destinations a quarantined device may still reach
 * (remediation, updates) and what enforcement points do when they cannot decide. One item
 * per tenant, replaced whole under If-Match; until first written, the defaults apply at
 * revision 0, the fail mode taken from the tenant settings.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { tenantSettings } from "../access/tenant-settings.ts";
import { domainEvent } from "../event/event.ts";
import type { Outcome } from "../outcome.ts";
import type { Ports } from "../ports.ts";
import { storedForm } from "../store/form.ts";
import { verb } from "../verb.ts";
import { enforcementSettingsSchema, refuseLegacyForms, type EnforcementSettings } from "./model.ts";
import { assertPolicySize, enforcementKey, policyItemFormat, preconditionFailed } from "./records.ts";

export const enforcementRecordSchema = enforcementSettingsSchema
  .extend({
    revision: z.number().int().nonnegative().meta({ description: "0 until first written; the HTTP ETag" }),
    updatedAt: z.string().optional(),
  })
  .meta({ id: "Enforcement", description: "quarantine destinations and fail mode, with their revision" });
export type EnforcementRecord = z.output<typeof enforcementRecordSchema>;

/** The settings the engine and enforcement points take. */
export const enforcementSettingsOf = ({
  revision: _revision,
  updatedAt: _updatedAt,
  ...settings
}: EnforcementRecord): EnforcementSettings => settings;

/** The tenant's enforcement settings, read consistently. */
export async function readEnforcement(ports: Ports, tenantId: string): Promise<EnforcementRecord> {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: enforcementKey(tenantId), ConsistentRead: true }),
  );
  if (Item) {
    const { pk: _pk, sk: _sk, ...record } = Item;
    return enforcementRecordSchema.parse(storedForm(record, policyItemFormat, `The enforcement settings of ${tenantId}`));
  }
  const { failMode } = await tenantSettings(ports, tenantId);
  return { quarantineDestinations: [], failMode, revision: 0 };
}

export const getEnforcement = verb(z.object({}), async (ports, ctx) => readEnforcement(ports, ctx.tenantId));

/** Replaces the settings whole, if they are still at `revision` (0 before the first write). */
export const replaceEnforcement = verb(
  enforcementSettingsSchema.extend({ revision: z.number().int() }),
  async (ports, ctx, input): Promise<Outcome<EnforcementRecord>> => {
    const { revision, ...settings } = input;
    refuseLegacyForms(settings);
    assertPolicySize("enforcement", settings, "quarantineDestinations");
    const current = await readEnforcement(ports, ctx.tenantId);
    if (current.revision !== revision) throw preconditionFailed("enforcement settings");
    const now = ports.now();
    const record: EnforcementRecord = { ...settings, revision: revision + 1, updatedAt: now.toISOString() };
    const event = domainEvent(ctx, "enforcement.updated", ctx.tenantId, { settings, previous: enforcementSettingsOf(current) }, now);
    await ports.ledger.commit({
      tenantId: ctx.tenantId,
      events: [event],
      feed: [{ kind: "settings", key: "enforcement", value: settings }],
      writes: [
        {
          Put: {
            TableName: ports.tables.control,
            Item: { ...enforcementKey(ctx.tenantId), ...record },
            ...(revision === 0
              ? { ConditionExpression: "attribute_not_exists(pk)" }
              : { ConditionExpression: "revision = :r", ExpressionAttributeValues: { ":r": revision } }),
          },
        },
      ],
      onConditionFailed: () => preconditionFailed("enforcement settings"),
    });
    return { value: record, events: [event] };
  },
);
