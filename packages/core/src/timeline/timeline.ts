import { PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import type { DomainEvent } from "../event/event.ts";
import { decodeCursor, encodeCursor, pageInput, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";
import { verb } from "../verb.ts";

export const timelineEntrySchema = z
  .object({ eventId: z.string(), type: z.string(), time: z.string(), actor: z.string(), data: z.record(z.string(), z.unknown()) })
  .meta({ id: "TimelineEntry" });
export type TimelineEntry = z.output<typeof timelineEntrySchema>;

const timelinePartition = (tenantId: string, subject: string) => `T#${tenantId}#S#${subject}`;

/**
 * Projects a domain event into its subject's timeline. Keyed by the event's time and id,
 * so a redelivered event rewrites the same item: at-least-once delivery stays exactly-once here.
 */
export async function recordTimelineEntry(ports: Ports, event: DomainEvent): Promise<void> {
  const entry: TimelineEntry = {
    eventId: event.id,
    type: event.type,
    time: event.time,
    actor: event.actor,
    data: event.data as Record<string, unknown>,
  };
  await ports.db.send(
    new PutCommand({
      TableName: ports.tables.timeline,
      Item: { pk: timelinePartition(event.tenantId, event.subject), sk: `${event.time}#${event.id}`, ...entry },
    }),
  );
}

/** A subject's timeline, oldest first. */
export const listTimeline = verb(
  pageInput.extend({ subject: z.string().min(1) }),
  async (ports, ctx, input): Promise<Page<TimelineEntry>> => {
    const pk = timelinePartition(ctx.tenantId, input.subject);
    const result = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.timeline,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": pk },
        Limit: input.limit,
        ExclusiveStartKey: decodeCursor(input.cursor, { pk }),
      }),
    );
    return {
      items: (result.Items ?? []).map((item) => timelineEntrySchema.parse(item)),
      next: encodeCursor(result.LastEvaluatedKey),
    };
  },
);
