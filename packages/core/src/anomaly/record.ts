/**
 * An anomaly becomes an `anomaly.detected` event committed through the ledger: in the
 * hash-chained audit trail (on the device's timeline) and, once published, on the bus for
 * automation rules and webhooks. `once` names what it was detected from so that a detector
 * run again on the same input (at-least-once delivery) records it once.
 */
import type { RequestContext } from "../context.ts";
import { SimrootError, isSimrootError } from "../error.ts";
import { domainEvent, type DomainEvent } from "../event/event.ts";
import type { Outcome } from "../outcome.ts";
import type { Ports } from "../ports.ts";
import type { Anomaly } from "./model.ts";

export const anomalyEventType = "anomaly.detected";
const onceRetentionSeconds = 7 * 24 * 60 * 60;

export async function recordAnomalies(
  ports: Ports,
  ctx: RequestContext,
  anomalies: readonly Anomaly[],
  once?: string,
): Promise<Outcome<Anomaly[]>> {
  if (anomalies.length === 0) return { value: [], events: [] };
  const now = ports.now();
  const events: DomainEvent[] = anomalies.map((anomaly) => domainEvent(ctx, anomalyEventType, anomaly.deviceId, anomaly, now));
  try {
    await ports.ledger.commit({
      tenantId: ctx.tenantId,
      events,
      writes: once
        ? [
            {
              Put: {
                TableName: ports.tables.control,
                Item: { pk: `T#${ctx.tenantId}#detected`, sk: once, expiresAt: Math.floor(now.getTime() / 1000) + onceRetentionSeconds },
                ConditionExpression: "attribute_not_exists(pk)",
              },
            },
          ]
        : [],
      onConditionFailed: () => new SimrootError("anomaly.already_recorded", "conflict", `already detected from ${once}`),
    });
  } catch (error) {
    if (isSimrootError(error) && error.code === "anomaly.already_recorded") return { value: [], events: [] };
    throw error;
  }
  return { value: [...anomalies], events };
}
