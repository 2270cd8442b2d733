/**
 * Which consumers have work for a tenant. The webhooks and automation consumers only act on a
 * tenant's changes once it has a webhook subscription or an automation rule; invoked for every
 * change of every tenant, they were most of the Lambda invocations an applied event costs. The
 * commit that creates a tenant's first subscription (or rule) also marks the tenant's interest
 * item; the outbox reads it (consistently, once per tenant per stream batch) and names the
 * interested consumers in each event's `resources`, which those consumers' rules match on.
 *
 * Nothing is lost: an event committed after the commit that marked the interest is published
 * after it, and the outbox's consistent read sees the mark. A tenant that removes its last
 * subscription stays marked (its consumer is invoked and finds nothing, as before).
 */
import { QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { recordKey, type RecordKind } from "../automation/record-key.ts";
import type { DomainEvent, PublishOptions } from "../event/event.ts";
import { consumerResource, type OptInConsumer } from "../platform/bus-names.ts";
import type { Ports } from "../ports.ts";
import { batchGetAll } from "../store/batch-get.ts";
import type { TransactItem } from "../store/transaction.ts";

/** The consumers a tenant opts into, by the kind of record (automation table) that opts in. */
export const optInConsumers = { webhooks: "webhook", automation: "rule" } as const satisfies Record<OptInConsumer, RecordKind>;

export const interestsKey = (tenantId: string) => ({ pk: `T#${tenantId}#interests`, sk: "consumers" });

/** The write, in the commit that creates a record of `kind`, that marks the tenant's interest in its consumer. */
export function interestWrite(ports: Pick<Ports, "tables">, tenantId: string, kind: RecordKind): TransactItem | undefined {
  if (!(Object.values(optInConsumers) as RecordKind[]).includes(kind)) return undefined;
  return {
    Update: {
      TableName: ports.tables.automation,
      Key: interestsKey(tenantId),
      UpdateExpression: "SET #kind = :yes",
      ExpressionAttributeNames: { "#kind": kind },
      ExpressionAttributeValues: { ":yes": true },
    },
  };
}

/** The `resources` of each event of a batch: the opt-in consumers its tenant has work for (read consistently). */
export async function routingOf(ports: Pick<Ports, "db" | "tables">, events: readonly DomainEvent[]): Promise<PublishOptions> {
  const tenants = [...new Set(events.map((event) => event.tenantId))];
  const items = await batchGetAll(ports, ports.tables.automation, tenants.map(interestsKey));
  const marked = new Map(items.map((item) => [String(item.pk), item]));
  for (const tenantId of tenants) {
    const key = interestsKey(tenantId);
    const item = marked.get(key.pk);
    // A kind the mark does not name yet (no mark at all, or one a create made for another kind) is looked up once.
    const unknown = Object.values(optInConsumers).filter((kind) => typeof item?.[kind] !== "boolean");
    if (unknown.length > 0) marked.set(key.pk, await lookUpInterests(ports, tenantId, unknown));
  }
  const resources = new Map(
    tenants.map((tenantId) => {
      const item = marked.get(interestsKey(tenantId).pk) ?? {};
      const consumers = (Object.keys(optInConsumers) as OptInConsumer[]).filter((consumer) => item[optInConsumers[consumer]] === true);
      return [tenantId, consumers.map(consumerResource)] as const;
    }),
  );
  return { resources: (event) => resources.get(event.tenantId) ?? [] };
}

/**
 * The kinds a tenant's mark does not name yet (its subscriptions and rules may predate the marks):
 * whether it has records of each, written down once so that later batches read one item. A kind a
 * create marked meanwhile keeps its mark (true): `if_not_exists`, and marks only ever become true.
 */
async function lookUpInterests(
  ports: Pick<Ports, "db" | "tables">,
  tenantId: string,
  kinds: readonly RecordKind[],
): Promise<Record<string, unknown>> {
  const found = await Promise.all(
    kinds.map(async (kind) => {
      const { Items = [] } = await ports.db.send(
        new QueryCommand({
          TableName: ports.tables.automation,
          KeyConditionExpression: "pk = :p",
          ExpressionAttributeValues: { ":p": recordKey(tenantId, kind, "").pk },
          Limit: 1,
          ConsistentRead: true,
        }),
      );
      return Items.length > 0;
    }),
  );
  const { Attributes } = await ports.db.send(
    new UpdateCommand({
      TableName: ports.tables.automation,
      Key: interestsKey(tenantId),
      UpdateExpression: `SET ${kinds.map((_, n) => `#k${n} = if_not_exists(#k${n}, :v${n})`).join(", ")}`,
      ExpressionAttributeNames: Object.fromEntries(kinds.map((kind, n) => [`#k${n}`, kind])),
      ExpressionAttributeValues: Object.fromEntries(found.map((value, n) => [`:v${n}`, value])),
      ReturnValues: "ALL_NEW",
    }),
  );
  return Attributes ?? {};
}
