/**
 * Parked facts: accepted events that cannot be applied yet (no device in the tenant matches
 * them). They wait here with their reason until an operator replays them, for instance
 * after registering the device. Nothing accepted is ever dropped.
 */
import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "zod";
import { refIdentifiers } from "../device/store.ts";
import { SimrootError } from "../error.ts";
import { decodeCursor, encodeCursor, pageInput, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";
import { verb } from "../verb.ts";
import type { IngestedEvent } from "./ingested.ts";

export const parkedSchema = z
  .object({
    id: z.string().meta({ description: "the id of the accepted event" }),
    reason: z.string(),
    parkedAt: z.string(),
    sourceId: z.string(),
    type: z.string(),
    subject: z.string(),
    event: z.record(z.string(), z.unknown()),
    /** Every identifier of the fact, normalized (`imsi:208...`): a device registered by any of them gets it replayed. */
    subjects: z.array(z.string()).optional(),
  })
  .meta({ id: "ParkedEvent" });
export type Parked = z.output<typeof parkedSchema>;

export const parkedPartition = (tenantId: string) => `T#${tenantId}#parked`;
const parkedKey = (tenantId: string, eventId: string) => ({ pk: parkedPartition(tenantId), sk: eventId });

export async function park(ports: Ports, ingested: IngestedEvent, reason: string): Promise<void> {
  const parked: Parked = {
    id: ingested.id,
    reason,
    parkedAt: ports.now().toISOString(),
    sourceId: ingested.data.sourceId,
    type: ingested.type,
    subject: ingested.subject,
    event: ingested as unknown as Record<string, unknown>,
    subjects: refIdentifiers(ingested.data.event.device).map(({ kind, value }) => `${kind}:${value}`),
  };
  await ports.db.send(
    new PutCommand({ TableName: ports.tables.control, Item: { ...parkedKey(ingested.tenantId, ingested.id), ...parked } }),
  );
}

/**
 * Forgets a parked event once it applied (a no-op when it was never parked). Almost every
 * applied event never was: a delete costs a write unit even when there is nothing to delete,
 * so an eventually consistent read (half a read unit) asks first. A parked record the read
 * does not show yet is left, and its replay is a duplicate the applier recognises.
 */
export async function unpark(ports: Ports, tenantId: string, eventId: string): Promise<void> {
  const key = parkedKey(tenantId, eventId);
  const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: key, ProjectionExpression: "pk" }));
  if (Item) await ports.db.send(new DeleteCommand({ TableName: ports.tables.control, Key: key }));
}

export const listParked = verb(pageInput, async (ports, ctx, input): Promise<Page<Parked>> => {
  const { pk } = parkedKey(ctx.tenantId, "");
  const result = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.control,
      KeyConditionExpression: "pk = :pk",
      ExpressionAttributeValues: { ":pk": pk },
      Limit: input.limit,
      ExclusiveStartKey: decodeCursor(input.cursor, { pk }),
      ConsistentRead: true,
    }),
  );
  return { items: (result.Items ?? []).map((item) => parkedSchema.parse(item)), next: encodeCursor(result.LastEvaluatedKey) };
});

/** Sends a parked event to the applier again; it leaves the parked list once it applies. */
export const replayParked = verb(z.object({ id: z.string().min(1) }), async (ports, ctx, input) => {
  const { Items } = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.control,
      KeyConditionExpression: "pk = :pk AND sk = :sk",
      ExpressionAttributeValues: { ":pk": parkedKey(ctx.tenantId, "").pk, ":sk": input.id },
      ConsistentRead: true,
    }),
  );
  const parked = Items?.[0];
  if (!parked) throw new SimrootError("parked.not_found", "not_found", `No parked event ${input.id}`);
  await ports.publisher.publish([parked.event as IngestedEvent]);
  return { id: input.id, replayed: true };
});
