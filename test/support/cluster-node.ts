/**
 * One instance of the control plane in its own process (as one Lambda container runs it): its
 * own DynamoDB client, ledger, caches and bus publisher, nothing shared with the others but
 * the store. The parent (test/support/cluster.ts) drives it over IPC, as the bus and the API
 * gateway would. Fault switches, from the environment:
 *   GSI_LAG_MS    a GSI Query does not yet see items written in the last N ms
 *   EVENTUAL_LAG_MS  an eventually consistent read of the control table answers items as they were up to N ms ago
 *   PUBLISH_FAIL  every bus publish throws
 */
import { serve } from "@hono/node-server";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { createApp } from "@simroot/api";
import {
  actOnDevice,
  applyOperatorEvent,
  documentClient,
  feedDeltas,
  feedSnapshot,
  fileSigner,
  isSimrootError,
  portsFor,
  outcomeValue,
  packReported,
  applyReported,
  reportedFacts,
  registerDevice,
  storeHealth,
  tableNames,
  type DeviceAction,
  type DomainEvent,
  type FeedEntry,
  type Publisher,
} from "@simroot/core";

import { billedTransaction, type ReportedCapacity } from "./billed-units.ts";
import { lagEventualReads } from "./store-faults.ts";

const lagMs = Number(process.env.GSI_LAG_MS ?? 0);
const failPublish = process.env.PUBLISH_FAIL === "1";

/** The write time an item carries (devices: updatedAt, bindings: since, revocation markers: revokedAt), raw or unmarshalled. */
function writtenAt(item: Record<string, unknown>): number | undefined {
  for (const field of ["updatedAt", "since", "revokedAt", "createdAt"]) {
    const raw = item[field] as string | { S?: string } | undefined;
    const stamp = typeof raw === "string" ? raw : raw?.S;
    if (stamp !== undefined) return Date.parse(stamp);
  }
  return undefined;
}

/** GSI read lag: a Query on an index leaves out every item written in the last `lagMs`, as an index not yet caught up would. */
function injectGsiLag(db: DynamoDBDocumentClient, lag: number) {
  db.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if ((context as { commandName?: string }).commandName !== "QueryCommand" || !(args.input as { IndexName?: string }).IndexName)
        return result;
      const output = result.output as { Items?: Record<string, unknown>[]; Count?: number };
      const horizon = Date.now() - lag;
      const visible = (output.Items ?? []).filter((item) => (writtenAt(item) ?? 0) <= horizon);
      output.Items = visible;
      output.Count = visible.length;
      return result;
    },
    { step: "initialize", name: "gsiLag" },
  );
}

const published: DomainEvent[] = [];
const publisher: Publisher = {
  async publish(events) {
    if (failPublish) throw new Error("injected: the bus refused the publish");
    published.push(...events);
    process.send?.({ kind: "published", events });
  },
};

/**
 * What this instance asked of the store: every call, the read and write units it was billed (every call asks for
 * ReturnConsumedCapacity; DynamoDB Local reports what DynamoDB would bill, an eventually consistent read at half a
 * consistent one, but for a transaction of several items of one table: ./billed-units.ts counts those), and the conditional writes of the feed (a version record, the feed head) the store refused because
 * another instance wrote first: what racing sequencers cost (each refused write is billed a write unit, on the feed's
 * one partition; a refusal reports no capacity, so it is not in `writeUnits`).
 */
const storeCalls = {
  calls: 0,
  feedWritesRefused: 0,
  readUnits: 0,
  writeUnits: 0,
  ambiguousTransactions: 0,
  readsBy: {} as Record<string, number>,
};
function countStoreCalls(db: DynamoDBDocumentClient) {
  db.middlewareStack.add(
    (next, context) => async (args) => {
      storeCalls.calls += 1;
      (args.input as Record<string, unknown>).ReturnConsumedCapacity = "INDEXES";
      try {
        const result = await next(args);
        const consumed = (result.output as { ConsumedCapacity?: unknown }).ConsumedCapacity;
        const command = (context as { commandName?: string }).commandName ?? "";
        const reading = /^(Get|BatchGet|Query|Scan|TransactGet)/.test(command);
        const reported = (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) as ReportedCapacity[];
        // DynamoDB Local under-reports a transaction of several items of a table: counted item by item.
        const billed = command === "TransactWriteItemsCommand" ? billedTransaction(args.input as never, reported) : undefined;
        if (billed?.ambiguous) storeCalls.ambiguousTransactions += 1;
        for (const entry of billed?.entries ?? reported) {
          storeCalls[reading ? "readUnits" : "writeUnits"] += entry.CapacityUnits ?? 0;
          // Read units by command and table (the table's key in tableNames: the name's last part).
          const by = `${command.replace("Command", "")} ${String(entry.TableName).split("-").at(-1)}`;
          if (reading) storeCalls.readsBy[by] = (storeCalls.readsBy[by] ?? 0) + (entry.CapacityUnits ?? 0);
        }
        return result;
      } catch (error) {
        const command = (context as { commandName?: string }).commandName;
        type Keyed = { pk?: unknown; sk?: unknown };
        const input = args.input as {
          Item?: Keyed;
          Key?: Keyed;
          UpdateExpression?: string;
          TransactItems?: { Put?: { Item?: Keyed }; Update?: { Key?: Keyed } }[];
        };
        const text = (value: unknown) => (typeof value === "object" && value !== null ? (value as { S?: string }).S : value);
        // A version record (`T#<tenant>#feed`, core feed-version.ts) or the feed head (`T#<tenant>` / `feed`): puts, the
        // head's moves (updates, core sequencer.ts `headUpdate`), and the transactions holding either.
        const headMove = command === "UpdateItemCommand" && String(input.UpdateExpression).startsWith("SET #version");
        const feed = [
          input.Item,
          ...(headMove ? [input.Key] : []),
          ...(input.TransactItems ?? []).flatMap((item) => [item.Put?.Item, item.Update?.Key]),
        ].some((item) => String(text(item?.pk)).endsWith("#feed") || text(item?.sk) === "feed");
        const refused = ["ConditionalCheckFailedException", "TransactionCanceledException"].includes((error as Error).name);
        const writes = ["PutItemCommand", "UpdateItemCommand", "TransactWriteItemsCommand"].includes(String(command));
        if (feed && refused && writes) storeCalls.feedWritesRefused += 1;
        throw error;
      }
    },
    { step: "initialize", name: "countStoreCalls" },
  );
}

const db = documentClient({ endpoint: process.env.DYNAMODB_ENDPOINT!, region: "us-east-1" });
if (lagMs > 0) injectGsiLag(db, lagMs);
const eventualLag = Number(process.env.EVENTUAL_LAG_MS ?? 0) > 0 ? lagEventualReads(db, Number(process.env.EVENTUAL_LAG_MS)) : undefined;
countStoreCalls(db);
const ports = portsFor(db, tableNames(process.env.TABLE_PREFIX), publisher, undefined, {
  ...(process.env.LEDGER_SHARDS ? { shards: Number(process.env.LEDGER_SHARDS) } : {}),
});
const signer = await fileSigner(process.env.SIGNING_KEY!);

type Request = { id: number; op: string; args: unknown };
const failure = (error: unknown) => `error:${isSimrootError(error) ? `${error.code} ${error.message}` : String((error as Error).message)}`;

async function applyPacked(events: DomainEvent[], batch: number, lanes: number) {
  const entries: DomainEvent[] = [];
  for (let start = 0; start < events.length; start += batch) {
    const chunk = events.slice(start, start + batch);
    // One request's facts: only those share an entry.
    entries.push(...packReported(chunk.map((event) => ({ ...event, requestId: chunk[0]!.requestId }))));
  }
  const outcomes: string[] = [];
  let next = 0;
  const lane = async () => {
    for (let n = next++; n < entries.length; n = next++) {
      try {
        // A fact that failed went back on the bus alone (this harness's publisher): reported as its error.
        outcomes.push(
          ...(await applyReported(ports, entries[n]!)).map((result) =>
            result.outcome ? outcomeValue(result.outcome).outcome : failure(result.error),
          ),
        );
      } catch (error) {
        outcomes.push(...reportedFacts(entries[n]!).map(() => failure(error)));
      }
    }
  };
  await Promise.all(Array.from({ length: lanes }, lane));
  return outcomes;
}

/** The operations the harness runs here, each given the arguments it takes (IPC carries no types: see `run` below). */
const ops: Record<string, (args: never) => Promise<unknown>> = {
  /** What this instance asked of the store so far (see `countStoreCalls`), and how many items a lagging read answered older. */
  async storeCalls() {
    return { ...storeCalls, readsBy: { ...storeCalls.readsBy }, eventualLagged: eventualLag?.count ?? 0 };
  },
  async register({ tenantId, imsis }: { tenantId: string; imsis: string[] }) {
    const ctx = { tenantId, actor: "system:cluster", requestId: "req_cluster" };
    return Promise.all(imsis.map(async (imsi) => (await registerDevice(ports, ctx, { imsi })).value.id));
  },
  /**
   * The consumer: applies each event as the operator-events Lambda would; reports each outcome or error code. With
   * `batch`, the events travel `batch` to an entry, as one request's facts do (`packReported`), and each entry is one
   * invocation (`applyReported`); `lanes` is then entries at a time.
   */
  async apply({ events, lanes, batch }: { events: DomainEvent[]; lanes?: number; batch?: number }) {
    if (batch) return applyPacked(events, batch, lanes ?? 1);
    const outcomes: string[] = new Array(events.length);
    let next = 0;
    const lane = async () => {
      for (let n = next++; n < events.length; n = next++) {
        try {
          outcomes[n] = outcomeValue(await applyOperatorEvent(ports, events[n]!)).outcome;
        } catch (error) {
          outcomes[n] = failure(error);
        }
      }
    };
    // `lanes` at a time (1: as one Lambda instance takes one event at a time), all at once by default.
    await Promise.all(Array.from({ length: lanes ?? events.length }, lane));
    return outcomes;
  },
  /** Every page of a snapshot: its version and entries. */
  async snapshot({ tenantId, limit }: { tenantId: string; limit: number }) {
    const entries: FeedEntry[] = [];
    let cursor: string | undefined;
    let version = 0;
    do {
      const page = await feedSnapshot(ports, signer, tenantId, cursor, limit);
      entries.push(...page.entries);
      version = page.signed.head.version;
      cursor = page.next;
    } while (cursor);
    return { version, entries };
  },
  /** Deltas after `since` until the head, page by page. */
  async deltas({ tenantId, since }: { tenantId: string; since: number }) {
    const entries: FeedEntry[] = [];
    let version = since;
    for (;;) {
      const answer = await feedDeltas(ports, signer, tenantId, { since: version, limit: 500, waitMs: 0 });
      if (answer.kind !== "response") break;
      entries.push(...answer.response.entries);
      if (answer.response.signed.head.version === version) break;
      version = answer.response.signed.head.version;
    }
    return { version, entries };
  },
  async act({ tenantId, id, action }: { tenantId: string; id: string; action: DeviceAction }) {
    const ctx = { tenantId, actor: "system:cluster", requestId: "req_cluster" };
    return (await actOnDevice(ports, ctx, { id, action, reason: "cluster test" })).value.outcome;
  },
  async sequence({ tenantId }: { tenantId: string }) {
    await ports.ledger.sequence(tenantId);
    return true;
  },
  async listen() {
    const app = createApp({
      ports: () => ports,
      feedSigner: async () => signer,
      health: { store: () => storeHealth(ports), bus: async () => ({ status: "ok" as const, detail: { kind: "cluster" } }) },
    });
    return new Promise((resolve) => {
      const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, (info) => resolve(`http://127.0.0.1:${info.port}`));
      process.once("disconnect", () => server.close());
    });
  },
};

process.on("message", (request: Request) => {
  const run = ops[request.op];
  if (!run) return process.send?.({ kind: "reply", id: request.id, error: `no op ${request.op}` });
  // The harness sends each op the arguments that op takes.
  run(request.args as never).then(
    (value) => process.send?.({ kind: "reply", id: request.id, value }),
    (error: unknown) => process.send?.({ kind: "reply", id: request.id, error: String((error as Error)?.stack ?? error) }),
  );
});
process.once("disconnect", () => {
  db.destroy();
  process.exit(0);
});
process.send?.({ kind: "ready" });
