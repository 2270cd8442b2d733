/**
 * Exactly-once audit for integrations that act outside simroot (AWS IoT, Tailscale, a SIEM).
 * The outside actions are idempotent (each run reconciles to the device's current state), the
 * bus delivers at least once: a marker per (integration, cause event), written in the same
 * ledger transaction as the audit record, makes a redelivery a no-op and audits each
 * delivery once. Markers expire after the bus's retry window.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type { RequestContext } from "../context.ts";
import { SimrootError, isSimrootError } from "../error.ts";
import { domainEvent, type DomainEvent } from "../event/event.ts";
import { retryPolicy } from "../platform/bus-names.ts";
import type { Ports } from "../ports.ts";

export type IntegrationName = "iot" | "tailscale" | "siem";

const deliveryKey = (tenantId: string, integration: IntegrationName, eventId: string) => ({
  pk: `I#${tenantId}#${integration}`,
  sk: eventId,
});

/** True when this cause event was already delivered (and audited) by this integration. */
export async function delivered(ports: Ports, tenantId: string, integration: IntegrationName, eventId: string): Promise<boolean> {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: deliveryKey(tenantId, integration, eventId), ConsistentRead: true }),
  );
  return Item !== undefined;
}

/** Commits the audit record of a delivery, once: a concurrent or repeated commit of the same delivery is a no-op. */
export async function recordDelivery(
  ports: Ports,
  ctx: RequestContext,
  integration: IntegrationName,
  cause: DomainEvent,
  data: Record<string, unknown>,
): Promise<void> {
  const now = ports.now();
  const expiresAt = Math.floor(now.getTime() / 1000) + 2 * retryPolicy.maximumEventAgeSeconds;
  try {
    await ports.ledger.commit({
      tenantId: ctx.tenantId,
      writes: [
        {
          Put: {
            TableName: ports.tables.control,
            Item: { ...deliveryKey(ctx.tenantId, integration, cause.id), at: now.toISOString(), expiresAt },
            ConditionExpression: "attribute_not_exists(pk)",
          },
        },
      ],
      events: [
        domainEvent(
          ctx,
          `integration.${integration}-synced`,
          cause.subject,
          // The cause's actor: the record of a change a rule made carries the rule's chain (automation/run.ts `chainOf`).
          { ...data, cause: { eventId: cause.id, type: cause.type, actor: cause.actor } },
          now,
        ),
      ],
      onConditionFailed: () => new SimrootError("integration.already_delivered", "conflict", "This delivery is already recorded"),
    });
  } catch (error) {
    if (isSimrootError(error) && error.code === "integration.already_delivered") return;
    throw error;
  }
}
