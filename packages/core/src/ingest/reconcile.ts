/**
 * When a device is registered, the facts that were parked because no device matched them
 * may now apply: send every parked fact that names one of its identifiers (any of them, as
 * normalized when parked) to the applier again.
 */
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { deviceIdentifiers, type Device } from "../device/device.ts";
import type { DomainEvent } from "../event/event.ts";
import type { Ports } from "../ports.ts";
import type { IngestedEvent } from "./ingested.ts";
import { parkedPartition } from "./parked.ts";

export async function replayParkedFor(ports: Ports, registered: DomainEvent): Promise<number> {
  const device = (registered.data as { device?: Device }).device;
  if (!device) return 0;
  const subjects = deviceIdentifiers(device).map(({ kind, value }) => `${kind}:${value}`);
  if (subjects.length === 0) return 0;
  const values = Object.fromEntries(subjects.map((subject, index) => [`:s${index}`, subject]));
  let replayed = 0;
  let cursor: Record<string, unknown> | undefined;
  do {
    const page = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.control,
        KeyConditionExpression: "pk = :pk",
        FilterExpression: [
          `subject IN (${Object.keys(values).join(", ")})`,
          ...Object.keys(values).map((name) => `contains(subjects, ${name})`),
        ].join(" OR "),
        ExpressionAttributeValues: { ":pk": parkedPartition(registered.tenantId), ...values },
        ExclusiveStartKey: cursor,
        ConsistentRead: true,
      }),
    );
    const events = (page.Items ?? []).map((item) => item.event as IngestedEvent);
    if (events.length > 0) await ports.publisher.publish(events);
    replayed += events.length;
    cursor = page.LastEvaluatedKey;
  } while (cursor);
  return replayed;
}
