/**
 * What the store does to a reader that tests of the ledger and the bindings bring about on purpose (a throttled read, a
 * read answered key by key at different instants), what they read back (the holders the feed serves), and items kept
 * as code before a change kept them. Middleware on one client: the other instances (clients) see the store as it is.
 */
import { DeleteCommand, GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import {
  feedHeadKey,
  feedPartition,
  feedVersionSchema,
  shardHeadKey,
  shardOfSubject,
  type documentClient,
  type Ports,
} from "@simroot/core";
import { bindingKey, legacyBindingKey } from "@simroot/core/device/keys";

type Client = ReturnType<typeof documentClient>;

/** The store refuses the sequencer's read of the shard heads (throttled, as under a herd) while `refuse()` says so. */
export function refuseSequencerReads(client: Client, refuse: () => boolean) {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = (context as { commandName?: string }).commandName;
      const tables = Object.keys((args.input as { RequestItems?: Record<string, unknown> }).RequestItems ?? {});
      if (command === "BatchGetItemCommand" && tables.some((table) => table.endsWith("control")) && refuse()) {
        throw Object.assign(new Error("Throughput exceeds the current capacity"), {
          name: "ProvisionedThroughputExceededException",
          $metadata: { httpStatusCode: 400 },
        });
      }
      return next(args);
    },
    { step: "initialize", name: "refuseSequencerReads" },
  );
}

/**
 * While `stale()` says so, the sequencer's read of the shard heads (whichever command) answers `before` for its shard:
 * that shard read before a change, the others after it, as AWS may answer a BatchGetItem key by key.
 */
export function staleShardRead(client: Client, before: Record<string, unknown>, stale: () => boolean, name = "staleShardRead") {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const command = (context as { commandName?: string }).commandName;
      if (!stale() || (command !== "BatchGetItemCommand" && command !== "TransactGetItemsCommand")) return result;
      const output = result.output as { Responses?: unknown };
      const items = Array.isArray(output.Responses)
        ? (output.Responses as { Item?: Record<string, unknown> }[])
        : Object.values((output.Responses ?? {}) as Record<string, Record<string, unknown>[]>).flatMap((list) =>
            list.map((Item) => ({ Item })),
          );
      for (const { Item: item } of items) if (item && item.pk === before.pk && item.sk === before.sk) Object.assign(item, before);
      return result;
    },
    { step: "initialize", name },
  );
}

/**
 * From now until the returned `thaw()`, the sequencer's reads through `client` find `deviceId`'s shard head as it is now
 * (`staleShardRead`): the changes committed there meanwhile wait, while the other shards' are served.
 */
export async function freezeShardHead(client: Client, ports: Ports, tenantId: string, deviceId: string) {
  const { Item } = await client.send(
    new GetCommand({ TableName: ports.tables.control, Key: shardHeadKey(tenantId, shardOfSubject(deviceId)), ConsistentRead: true }),
  );
  let stale = true;
  staleShardRead(client, Item!, () => stale);
  return () => {
    stale = false;
  };
}

/** The tenant's feed version items, in order. */
export async function feedItems(ports: Ports, tenantId: string) {
  const { Items = [] } = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.audit,
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": feedPartition(tenantId) },
      ConsistentRead: true,
    }),
  );
  return Items;
}

/** Who the feed says holds `address`, version after version (null: nobody). */
export async function holdersInFeed(ports: Ports, tenantId: string, address: string) {
  return (await feedItems(ports, tenantId))
    .flatMap(
      (item) => feedVersionSchema.shape.entries.parse(item.entries) as { kind: string; key: string; value: { deviceId?: string } | null }[],
    )
    .filter((entry) => entry.kind === "binding" && entry.key === address)
    .map((entry) => entry.value?.deviceId ?? null);
}

/**
 * Keeps an address's binding item where code before 898598b kept it: its own partition, listed by the index's one
 * binding partition (its revision and record position included). Returns the item as it was.
 */
export async function keptAsBefore(ports: Ports, tenantId: string, address: string) {
  const { db, tables } = ports;
  const { Item } = await db.send(new GetCommand({ TableName: tables.identity, Key: bindingKey(tenantId, address), ConsistentRead: true }));
  if (!Item?.deviceId) throw new Error(`nobody holds ${address}`);
  await db.send(
    new PutCommand({
      TableName: tables.identity,
      Item: { ...Item, ...legacyBindingKey(tenantId, address), gsi1pk: `T#${tenantId}#binding`, gsi1sk: address },
    }),
  );
  await db.send(new DeleteCommand({ TableName: tables.identity, Key: bindingKey(tenantId, address) }));
  return Item;
}

/**
 * The store fails this client's moves of the tenant's feed head (throttled): `times` of them (default every one),
 * before writing (`lands: false`) or after (`lands: true`: the head moved, the answer lost). Returns the count failed.
 */
export function failHeadMoves(client: Client, tenantId: string, options: { times?: number; lands?: boolean } = {}) {
  const failed = { count: 0 };
  const head = feedHeadKey(tenantId);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { TableName?: string; Key?: Record<string, unknown>; UpdateExpression?: string };
      // The sequencer's head move (sequencer.ts `headUpdate`), not a notice's mark or a trailing claim.
      const headMove =
        ["UpdateCommand", "UpdateItemCommand"].includes(String((context as { commandName?: string }).commandName)) &&
        input.TableName?.endsWith("control") &&
        input.Key?.pk === head.pk &&
        input.Key?.sk === head.sk &&
        String(input.UpdateExpression).startsWith("SET #version");
      if (!headMove || failed.count >= (options.times ?? Number.POSITIVE_INFINITY)) return next(args);
      failed.count++;
      if (options.lands) await next(args);
      throw Object.assign(new Error("Throughput exceeds the current capacity"), {
        name: "ProvisionedThroughputExceededException",
        $metadata: { httpStatusCode: 400 },
      });
    },
    { step: "initialize", name: "failHeadMoves" },
  );
  return failed;
}

/**
 * Eventually consistent reads of one table (`GetItem`, `BatchGetItem` without `ConsistentRead`) answer each item as this
 * client first read it within the last `lagMs` (absent, if it was absent then): a replica up to `lagMs` behind, as
 * DynamoDB documents eventually consistent reads may be (DynamoDB Local always answers the newest). Consistent reads,
 * and the other tables, see the store as it is. Returns how many items were answered older than they are.
 */
export function lagEventualReads(client: Client, lagMs: number, table = "control") {
  const text = (value: unknown) => (typeof value === "object" && value !== null ? (value as { S?: unknown }).S : value);
  const keyText = (key: Record<string, unknown>) => JSON.stringify([text(key.pk), text(key.sk)]);
  const kept = new Map<string, { item: Record<string, unknown> | undefined; at: number }>();
  const lagged = { count: 0 };
  const asOf = (key: Record<string, unknown>, fresh: Record<string, unknown> | undefined) => {
    const now = Date.now();
    const old = kept.get(keyText(key));
    if (old && now - old.at < lagMs) {
      if (JSON.stringify(old.item) !== JSON.stringify(fresh)) lagged.count++;
      return old.item === undefined ? undefined : structuredClone(old.item);
    }
    kept.set(keyText(key), { item: fresh === undefined ? undefined : structuredClone(fresh), at: now });
    return fresh;
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const command = (context as { commandName?: string }).commandName;
      const input = args.input as {
        TableName?: string;
        Key?: Record<string, unknown>;
        ConsistentRead?: boolean;
        RequestItems?: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead?: boolean }>;
      };
      if (
        (command === "GetItemCommand" || command === "GetCommand") &&
        input.TableName?.endsWith(table) &&
        !input.ConsistentRead &&
        input.Key
      ) {
        const output = result.output as { Item?: Record<string, unknown> };
        const item = asOf(input.Key, output.Item);
        if (item === undefined) delete output.Item;
        else output.Item = item;
      }
      if (command === "BatchGetItemCommand" || command === "BatchGetCommand") {
        const output = result.output as { Responses?: Record<string, Record<string, unknown>[]> };
        for (const [name, request] of Object.entries(input.RequestItems ?? {})) {
          if (!name.endsWith(table) || request.ConsistentRead) continue;
          const found = new Map((output.Responses?.[name] ?? []).map((item) => [keyText(item), item]));
          const unprocessed = new Set(
            (
              (result.output as { UnprocessedKeys?: Record<string, { Keys?: Record<string, unknown>[] }> }).UnprocessedKeys?.[name]?.Keys ??
              []
            ).map(keyText),
          );
          const answered = request.Keys.filter((key) => !unprocessed.has(keyText(key))).flatMap((key) => {
            const item = asOf(key, found.get(keyText(key)));
            return item === undefined ? [] : [item];
          });
          output.Responses = { ...output.Responses, [name]: answered };
        }
      }
      return result;
    },
    { step: "initialize", name: `lagEventualReads-${table}` },
  );
  return lagged;
}

/**
 * While `refuse()` says so, the store times out this client's commits of an integration's delivery records (the ledger
 * transaction that writes the marker `I#<tenant>#<integration>`), before writing: what an integration did outside is
 * then not yet audited. Returns the count refused.
 */
export function failDeliveryRecords(client: Client, tenantId: string, integration: string, refuse: () => boolean) {
  const failed = { count: 0 };
  const marker = `I#${tenantId}#${integration}`;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = String((context as { commandName?: string }).commandName);
      const items = (args.input as { TransactItems?: { Put?: { Item?: Record<string, unknown> } }[] }).TransactItems ?? [];
      if (!command.startsWith("TransactWrite") || !items.some((item) => item.Put?.Item?.pk === marker) || !refuse()) return next(args);
      failed.count++;
      throw Object.assign(new Error("Socket timed out without establishing a connection"), { name: "TimeoutError" });
    },
    { step: "initialize", name: `failDeliveryRecords-${integration}` },
  );
  return failed;
}
