/**
 * The items of the automation table that are resources of a tenant (automation rules,
 * webhook subscriptions, incidents): one partition per tenant and kind, sorted by id, so a
 * list is one Query on the table itself. Writes go through the ledger with their event.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type { RequestContext } from "../context.ts";
import { SimrootError } from "../error.ts";
import { domainEvent, type DomainEvent } from "../event/event.ts";
import { partitionPage, type Page } from "../page.ts";
import { interestWrite } from "../outbox/interests.ts";
import type { Ports } from "../ports.ts";
import type { TransactItem } from "../store/transaction.ts";

import { recordKey, type RecordKind } from "./record-key.ts";

export { recordKey, type RecordKind };

export async function readRecord(
  ports: Ports,
  tenantId: string,
  kind: RecordKind,
  id: string,
): Promise<Record<string, unknown> | undefined> {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.automation, Key: recordKey(tenantId, kind, id), ConsistentRead: true }),
  );
  if (!Item) return undefined;
  const { pk: _pk, sk: _sk, ...rest } = Item;
  return rest;
}

export async function listRecords<Item>(
  ports: Ports,
  tenantId: string,
  kind: RecordKind,
  page: { readonly limit: number; readonly cursor?: string | undefined },
  parse: (item: Record<string, unknown>) => Item,
): Promise<Page<Item>> {
  const pk = recordKey(tenantId, kind, "").pk;
  return partitionPage(ports, ports.tables.automation, pk, page, ({ pk: _pk, sk: _sk, ...rest }) => parse(rest));
}

/** Every record of a kind (automation reads a tenant's rules and subscriptions whole; each is bounded by `maxPerTenant`). */
export async function allRecords<Item>(ports: Ports, tenantId: string, kind: RecordKind, parse: (item: Record<string, unknown>) => Item) {
  const items: Item[] = [];
  let cursor: string | undefined;
  do {
    const page = await listRecords(ports, tenantId, kind, { limit: 500, cursor }, parse);
    items.push(...page.items);
    cursor = page.next;
  } while (cursor);
  return items;
}

/**
 * How long an instance matches events against the rules or subscriptions it last read: a change
 * made on another instance reaches its matching within this (one made through this instance's
 * ports at once). Events come in bursts (a storm of flow reports, a fleet re-attaching): each
 * instance then reads a tenant's rules once per window, not once per event.
 */
export const recordCacheMs = 2_000;
/** Tenants whose rules and subscriptions an instance keeps (least recently read forgotten first). */
const maxCachedTenants = 10_000;
const recordCaches = new WeakMap<object, Map<string, { readonly at: number; readonly items: Promise<unknown[]> }>>();
const cacheKey = (tenantId: string, kind: RecordKind) => `${tenantId}|${kind}`;

/** `allRecords`, as read at most `recordCacheMs` ago by this instance (per store client). */
export function cachedRecords<Item>(
  ports: Ports,
  tenantId: string,
  kind: RecordKind,
  parse: (item: Record<string, unknown>) => Item,
): Promise<Item[]> {
  let cache = recordCaches.get(ports.db);
  if (!cache) recordCaches.set(ports.db, (cache = new Map()));
  const key = cacheKey(tenantId, kind);
  const now = ports.now().getTime();
  const hit = cache.get(key);
  if (hit && now >= hit.at && now - hit.at < recordCacheMs) return hit.items as Promise<Item[]>;
  const items = allRecords(ports, tenantId, kind, parse);
  const entry = { at: now, items };
  cache.delete(key);
  cache.set(key, entry);
  if (cache.size > maxCachedTenants) cache.delete(cache.keys().next().value as string);
  const owner = cache;
  items.catch(() => owner.get(key) === entry && owner.delete(key));
  return items;
}

export const notFound = (kind: RecordKind, id: string) => new SimrootError(`${kind}.not_found`, "not_found", `No ${kind} ${id}`);
export const stale = () =>
  new SimrootError("request.precondition_failed", "conflict", "The resource changed since you read it", { detail: { status: 412 } });

/**
 * Writes a record (a new one, or a replacement of `revision`), or removes it, through the
 * ledger with the event that says so. Returns that event.
 */
/** How many records of a kind a tenant has, for the kinds with a limit (written with every create and removal of one). */
const countKey = (tenantId: string, kind: RecordKind) => ({ pk: `T#${tenantId}#count`, sk: kind });

/**
 * The write that moves a tenant's count of `kind` to `next`, conditioned on the count read (`undefined`: no count item
 * yet). Two creates that both read the count below the limit would otherwise both pass it: one of them fails here.
 */
const countWrite = (ports: Ports, tenantId: string, kind: RecordKind, read: number | undefined, next: number): TransactItem => ({
  Put: {
    TableName: ports.tables.automation,
    Item: { ...countKey(tenantId, kind), n: next },
    ...(read === undefined
      ? { ConditionExpression: "attribute_not_exists(pk)" }
      : { ConditionExpression: "n = :n", ExpressionAttributeValues: { ":n": read } }),
  },
});

/**
 * The count write a change of a record needs: for a create of a kind with a limit, past the limit the create is refused
 * (a tenant created before the count item counts its listed records once); for a removal, when the kind is counted.
 */
async function countChange(
  ports: Ports,
  tenantId: string,
  kind: RecordKind,
  change: { readonly create?: { readonly max: number; readonly refuse: () => SimrootError }; readonly remove?: boolean },
): Promise<TransactItem | undefined> {
  if (!change.create && !change.remove) return undefined;
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.automation, Key: countKey(tenantId, kind), ConsistentRead: true }),
  );
  const read = Item === undefined ? undefined : Number(Item.n);
  if (change.remove) return read === undefined ? undefined : countWrite(ports, tenantId, kind, read, Math.max(0, read - 1));
  const { max, refuse } = change.create!;
  const count = read ?? (await listRecords(ports, tenantId, kind, { limit: max }, (item) => item)).items.length;
  if (count >= max) throw refuse();
  return countWrite(ports, tenantId, kind, read, count + 1);
}

export async function commitRecord(
  ports: Ports,
  ctx: RequestContext,
  kind: RecordKind,
  id: string,
  write: {
    readonly item?: Record<string, unknown>;
    readonly previousRevision?: number;
    /** A create of a kind with a limit: at most `max` records per tenant, counted in the same commit. */
    readonly limit?: { readonly max: number; readonly refuse: () => SimrootError };
  },
  type: string,
  data: Record<string, unknown>,
): Promise<DomainEvent> {
  const event = domainEvent(ctx, type, id, data, ports.now());
  const key = recordKey(ctx.tenantId, kind, id);
  const condition =
    write.previousRevision === undefined
      ? { ConditionExpression: "attribute_not_exists(pk)" }
      : { ConditionExpression: "revision = :r", ExpressionAttributeValues: { ":r": write.previousRevision } };
  const creates = write.item !== undefined && write.previousRevision === undefined;
  const count = await countChange(ports, ctx.tenantId, kind, {
    ...(creates && write.limit ? { create: write.limit } : {}),
    remove: write.item === undefined,
  });
  // A new record marks the tenant's interest in its consumer, in the same commit: the outbox routes the tenant's later events to it.
  const interest = creates ? interestWrite(ports, ctx.tenantId, kind) : undefined;
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    events: [event],
    writes: [
      write.item
        ? { Put: { TableName: ports.tables.automation, Item: { ...key, ...write.item }, ...condition } }
        : { Delete: { TableName: ports.tables.automation, Key: key, ...condition } },
      ...(count ? [count] : []),
      ...(interest ? [interest] : []),
    ],
    onConditionFailed: (index) =>
      index === 1 && count
        ? new SimrootError("store.conflict", "conflict", `Another change of the tenant's ${kind}s landed at once: try again`)
        : write.previousRevision === undefined
          ? new SimrootError(`${kind}.exists`, "conflict", `${kind} ${id} exists`)
          : stale(),
  });
  // Once committed, this instance matches against the change at once (others within `recordCacheMs`): a read that began
  // before the commit ended is no longer shared.
  recordCaches.get(ports.db)?.delete(cacheKey(ctx.tenantId, kind));
  return event;
}
