/**
 * Exactly-once audit for integrations that act outside simroot (AWS IoT, Tailscale, a SIEM).
 * The outside actions are idempotent (each run reconciles to the device's current state), the
 * bus delivers at least once: a marker per (integration, cause event), written in the same
 * ledger transaction as the audit record, makes a redelivery a no-op and audits each
 * delivery once. Markers expire after the bus's retry window.
 *
 * An integration whose outside actions leave nothing to tell a retry what they changed (an IoT thing found in line)
 * first writes what it is about to do under the same key (`intendDelivery`): a retry after a failed commit of the
 * record finds that plan and records it (review 133: a throttled commit's retry found the thing in line, changed
 * nothing, and the change made in IoT Core was never audited). The record's commit replaces the plan, in its
 * transaction: no delete, and the one read a delivery makes anyway (`readDelivery`) returns it.
 */
import { DeleteCommand, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
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

/** How long a marker or a plan is kept: past the bus's retry window, no delivery of its event comes again. */
const expiresAt = (now: Date) => Math.floor(now.getTime() / 1000) + 2 * retryPolicy.maximumEventAgeSeconds;

/** Where a delivery of this cause event stands: recorded, or not yet (with what earlier attempts set out to do). */
export type DeliveryState = { readonly delivered: true } | { readonly delivered: false; readonly planned: readonly string[] };

export async function readDelivery(ports: Ports, tenantId: string, integration: IntegrationName, eventId: string): Promise<DeliveryState> {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: deliveryKey(tenantId, integration, eventId), ConsistentRead: true }),
  );
  if (Item === undefined) return { delivered: false, planned: [] };
  return Array.isArray(Item.planned) ? { delivered: false, planned: Item.planned as string[] } : { delivered: true };
}

/** True when this cause event was already delivered (and audited) by this integration. */
export async function delivered(ports: Ports, tenantId: string, integration: IntegrationName, eventId: string): Promise<boolean> {
  return (await readDelivery(ports, tenantId, integration, eventId)).delivered;
}

/**
 * Writes down, before acting outside, what a delivery is about to do (added to what earlier attempts planned), so that a
 * retry records it though it finds nothing left to do. Throws `integration.already_delivered` when the delivery is
 * recorded meanwhile (a duplicate delivery's run committed): nothing is left to do.
 */
export async function intendDelivery(
  ports: Ports,
  tenantId: string,
  integration: IntegrationName,
  eventId: string,
  planned: readonly string[],
): Promise<void> {
  try {
    await ports.db.send(
      new UpdateCommand({
        TableName: ports.tables.control,
        Key: deliveryKey(tenantId, integration, eventId),
        UpdateExpression: "SET planned = list_append(if_not_exists(planned, :none), :planned), expiresAt = :expiresAt",
        ConditionExpression: "attribute_not_exists(pk) OR attribute_exists(planned)",
        ExpressionAttributeValues: { ":none": [], ":planned": [...planned], ":expiresAt": expiresAt(ports.now()) },
      }),
    );
  } catch (error) {
    if ((error as { name?: string }).name !== "ConditionalCheckFailedException") throw error;
    throw new SimrootError("integration.already_delivered", "conflict", "This delivery is already recorded", { cause: error });
  }
}

/**
 * Takes back a plan that came to nothing (the run found nothing to change, as a revoked thing's certificates, revoked
 * again on each delivery): left, a redelivery would record it as done. Only the plan as this run wrote it: one a
 * duplicate delivery's run added to stays.
 */
export async function abandonDelivery(
  ports: Ports,
  tenantId: string,
  integration: IntegrationName,
  eventId: string,
  planned: readonly string[],
): Promise<void> {
  try {
    await ports.db.send(
      new DeleteCommand({
        TableName: ports.tables.control,
        Key: deliveryKey(tenantId, integration, eventId),
        ConditionExpression: "planned = :planned",
        ExpressionAttributeValues: { ":planned": [...planned] },
      }),
    );
  } catch (error) {
    if ((error as { name?: string }).name !== "ConditionalCheckFailedException") throw error;
  }
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
  try {
    await ports.ledger.commit({
      tenantId: ctx.tenantId,
      writes: [
        {
          Put: {
            TableName: ports.tables.control,
            // Replaces the delivery's plan (`intendDelivery`), not another run's record.
            Item: { ...deliveryKey(ctx.tenantId, integration, cause.id), at: now.toISOString(), expiresAt: expiresAt(now) },
            ConditionExpression: "attribute_not_exists(pk) OR attribute_exists(planned)",
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
