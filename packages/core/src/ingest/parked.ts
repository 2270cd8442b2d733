/**
 * Parked facts: accepted events that cannot be applied yet (no device in the tenant matches
 * them). They wait here with their reason until the device is registered (the reconciler
 * replays what names any of its identifiers) or an operator replays them, for at most
 * `parkedRetentionSeconds` (DynamoDB's TTL removes them then; the list shows when).
 *
 * Each parked fact is indexed by every identifier it carries (one small item per identifier,
 * under `T#<tenant>#parked#<identifier>`), so a registration reads the facts that name the
 * device, not every fact parked in the tenant.
 */
import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { refIdentifiers } from "../device/store.ts";
import { SimrootError } from "../error.ts";
import { pageInput, partitionPage, type Page } from "../page.ts";
import { batchGetAll } from "../store/batch-get.ts";
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
    expiresAt: z
      .number()
      .int()
      .optional()
      .meta({ description: "when DynamoDB's TTL removes it unless it applied or was replayed first (epoch seconds)" }),
  })
  .meta({ id: "ParkedEvent" });
export type Parked = z.output<typeof parkedSchema>;

/** How long a parked fact waits for its device (or an operator's replay). */
export const parkedRetentionSeconds = 30 * 24 * 60 * 60;

export const parkedPartition = (tenantId: string) => `T#${tenantId}#parked`;
const parkedKey = (tenantId: string, eventId: string) => ({ pk: parkedPartition(tenantId), sk: eventId });
/** The index item of one identifier of a parked fact. */
const subjectKey = (tenantId: string, subject: string, eventId: string) => ({ pk: `${parkedPartition(tenantId)}#${subject}`, sk: eventId });

export async function park(ports: Ports, ingested: IngestedEvent, reason: string): Promise<void> {
  const expiresAt = Math.floor(ports.now().getTime() / 1000) + parkedRetentionSeconds;
  const parked: Parked = {
    id: ingested.id,
    reason,
    parkedAt: ports.now().toISOString(),
    sourceId: ingested.data.sourceId,
    type: ingested.type,
    subject: ingested.subject,
    event: ingested as unknown as Record<string, unknown>,
    subjects: refIdentifiers(ingested.data.event.device).map(({ kind, value }) => `${kind}:${value}`),
    expiresAt,
  };
  // The index first: a fact parked without its index would wait for a replay by hand. (A retried
  // delivery writes the same items again; an index item left by a failed park finds nothing.)
  await Promise.all(
    (parked.subjects ?? []).map((subject) =>
      ports.db.send(
        new PutCommand({ TableName: ports.tables.control, Item: { ...subjectKey(ingested.tenantId, subject, ingested.id), expiresAt } }),
      ),
    ),
  );
  await ports.db.send(
    new PutCommand({ TableName: ports.tables.control, Item: { ...parkedKey(ingested.tenantId, ingested.id), ...parked } }),
  );
}

/** The parked facts that name any of `subjects`, through their index (consistent reads). */
export async function parkedNaming(ports: Ports, tenantId: string, subjects: readonly string[]): Promise<Parked[]> {
  const ids = new Set<string>();
  for (const subject of new Set(subjects)) {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await ports.db.send(
        new QueryCommand({
          TableName: ports.tables.control,
          KeyConditionExpression: "pk = :pk",
          ExpressionAttributeValues: { ":pk": subjectKey(tenantId, subject, "").pk },
          ProjectionExpression: "sk",
          ExclusiveStartKey: start,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) ids.add(String(item.sk));
      start = page.LastEvaluatedKey;
    } while (start);
  }
  const found = (
    await batchGetAll(
      ports,
      ports.tables.control,
      [...ids].map((id) => parkedKey(tenantId, id)),
    )
  ).map((item) => parkedSchema.parse(item));
  return found.sort((a, b) => (a.id < b.id ? -1 : 1));
}

/**
 * Forgets a parked event once it applied (a no-op when it was never parked). Almost every
 * applied event never was: a delete costs a write unit even when there is nothing to delete,
 * so an eventually consistent read (half a read unit) asks first. A parked record the read
 * does not show yet is left, and its replay is a duplicate the applier recognises.
 */
export async function unpark(ports: Ports, tenantId: string, eventId: string): Promise<void> {
  const key = parkedKey(tenantId, eventId);
  const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: key, ProjectionExpression: "pk, subjects" }));
  if (!Item) return;
  await ports.db.send(new DeleteCommand({ TableName: ports.tables.control, Key: key }));
  const subjects = (Item.subjects ?? []) as string[];
  await Promise.all(
    subjects.map((subject) =>
      ports.db.send(new DeleteCommand({ TableName: ports.tables.control, Key: subjectKey(tenantId, subject, eventId) })),
    ),
  );
}

export const listParked = verb(
  pageInput,
  async (ports, ctx, input): Promise<Page<Parked>> =>
    partitionPage(ports, ports.tables.control, parkedPartition(ctx.tenantId), input, (item) => parkedSchema.parse(item)),
);

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
