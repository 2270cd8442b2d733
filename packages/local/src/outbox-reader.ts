/**
 * The outbox read locally: the audit table's DynamoDB stream, read from DynamoDB Local with
 * the Streams API, published to the local bus. This is what the stream's event source mapping
 * does in AWS (functions/src/outbox.ts): every committed audit record is published, in order
 * per stream shard, and the reader's position (one item per shard in the control table) moves
 * only past records whose events the bus accepted (or refused for good: a dead letter each, core
 * outbox.ts). A failed publish is retried with backoff from that position; a restart resumes there.
 *
 * The history reader (`startHistoryReader`) reads the same stream by its own position and writes what each record
 * projects (core outbox.ts `projectFromStream`), as its own event source mapping does in AWS (functions/src/history.ts):
 * a bus that refuses events holds back the events, never the history.
 */
import { DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type _Record,
  type Shard,
} from "@aws-sdk/client-dynamodb-streams";
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import {
  catchUpFromStream,
  dynamoLocalCredentials,
  earliestInStream,
  projectFromStream,
  publishFromStream,
  type CatchUpOptions,
  type FeedNotifier,
  type OutboxStreamRecord,
  type Ports,
  type Publisher,
} from "@simroot/core";

export interface OutboxReaderOptions {
  readonly db: DynamoDBDocumentClient;
  readonly tables: Ports["tables"];
  readonly endpoint: string;
  readonly region: string;
  readonly publisher: Publisher;
  /**
   * What the reader does with a batch of records (default: publishes their events to `publisher`). Resolves with how
   * many it handled and, when one failed, the sequence number of the first not handled: the reader resumes there.
   */
  readonly handle?: (
    records: OutboxStreamRecord[],
  ) => Promise<{ readonly done: number; readonly failedAt?: string; readonly error?: unknown }>;
  /** The reader's name: its position in the stream is its own (default `outbox`). */
  readonly name?: string;
  /** Runs each batch's handling (the runtime checks it against the function's grants: local grants.ts). */
  readonly wrap?: <T>(body: () => Promise<T>) => Promise<T>;
  /**
   * How long a reader that just read records waits before reading again (default 25 ms); idle,
   * it waits twice as long each round, up to `idlePollMs` (default 250 ms). `nudge` cuts a wait short.
   */
  readonly pollMs?: number;
  readonly idlePollMs?: number;
}

export interface OutboxReader {
  /** Resolves once every record written before the call has been published (or `timeoutMs` passed: false). */
  caughtUp(timeoutMs?: number): Promise<boolean>;
  readonly published: () => number;
  /** Reads the stream now (the ledger of this process committed): latency only, correctness never depends on it. */
  nudge(): void;
  stop(): Promise<void>;
}

interface ShardState {
  readonly id: string;
  readonly parent?: string;
  iterator?: string;
  after?: string;
  done: boolean;
  failures: number;
  retryAt: number;
}

/** A reader's position in one shard of one stream (a table made again has a new stream, whose shards may reuse ids). */
const positionKey = (name: string, streamArn: string, shardId: string) => ({ pk: `${name}#${streamArn}`, sk: shardId });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const maxBackoffMs = 5_000;

/**
 * The history reader: what each record projects (its subject's listing, its IP leases), by its own position; and,
 * with a `ledger` (its own, as the history function has in AWS), the feed's backstop (core ledger/catch-up.ts).
 */
export function startHistoryReader(
  options: Omit<OutboxReaderOptions, "publisher" | "handle" | "name"> & {
    /** The feed's backstop (core ledger/catch-up.ts), announcing what it moves on `feedNotifier`: off when false. */
    readonly backstop?: false | { readonly feedNotifier?: FeedNotifier; readonly options?: CatchUpOptions };
  },
): Promise<OutboxReader> {
  const { backstop } = options;
  return startOutboxReader({
    ...options,
    name: "history",
    publisher: { publish: async () => {} },
    handle: async (records) => {
      const { projected, ...failure } = await projectFromStream(records, options);
      if (!backstop) return { done: projected, ...failure };
      const caught = await catchUpFromStream(
        records,
        { db: options.db, tables: options.tables, ...(backstop.feedNotifier ? { feedNotifier: backstop.feedNotifier } : {}) },
        backstop.options,
      );
      // A burst's trailing notice runs beside the stream (the history function awaits it before it returns): the
      // reader's position, and so the runtime's `settled`, does not wait out the notice interval.
      void caught.result.trailing;
      const failedAt = earliestInStream(records, [failure.failedAt, caught.retryFrom]);
      if (failedAt === undefined) return { done: projected };
      // Every record before the first one given again is done (written and covered).
      const done = records.findIndex((record) => record.dynamodb?.SequenceNumber === failedAt);
      return { done, failedAt, error: failure.error ?? new Error(`feed not caught up: ${caught.result.uncovered.join(", ")}`) };
    },
  });
}

export async function startOutboxReader(options: OutboxReaderOptions): Promise<OutboxReader> {
  const name = options.name ?? "outbox";
  const handle =
    options.handle ??
    (async (records: OutboxStreamRecord[]) => {
      const { published, refused, ...failure } = await publishFromStream(options.publisher, records, options);
      // A dead letter now (core outbox.ts): the position moves past it, as the mapping's does in AWS.
      for (const { record, reason, again, held } of refused) {
        console.error(
          JSON.stringify({
            level: "error",
            component: name,
            message: held
              ? "the bus has not taken a committed event for 12 hours: held as a dead letter of its tenant (redrive it once the bus takes events)"
              : "the bus refused a committed event for good: a dead letter of its tenant now",
            tenantId: record.tenantId,
            eventId: record.eventId,
            shard: record.shard,
            seq: record.seq,
            reason,
            // Its letter was written before: these records were read before (a restart before the position moved).
            ...(again ? { again } : {}),
          }),
        );
      }
      return { done: published, ...failure };
    });
  const pollMs = options.pollMs ?? 25;
  const idlePollMs = Math.max(pollMs, options.idlePollMs ?? 250);
  let idleFor = pollMs;
  const streams = new DynamoDBStreamsClient({
    endpoint: options.endpoint,
    region: options.region,
    credentials: dynamoLocalCredentials(),
  });
  const { Table } = await (options.db as unknown as DynamoDBClient).send(new DescribeTableCommand({ TableName: options.tables.audit }));
  const latest = Table?.LatestStreamArn;
  if (!latest) throw new Error(`the audit table ${options.tables.audit} has no stream: the outbox cannot run`);
  const streamArn: string = latest;
  const shards = new Map<string, ShardState>();
  let published = 0;
  let stopping = false;
  let lastRefresh = 0;
  /** Rounds that read every open shard to its end; `caughtUp` waits for one that started after it was called. */
  let round = 0;
  let quietRound = -1;

  async function loadShard(shard: Shard): Promise<ShardState> {
    const { Item } = await options.db.send(
      new GetCommand({ TableName: options.tables.control, Key: positionKey(name, streamArn, shard.ShardId!), ConsistentRead: true }),
    );
    return {
      id: shard.ShardId!,
      ...(shard.ParentShardId ? { parent: shard.ParentShardId } : {}),
      ...(typeof Item?.after === "string" ? { after: Item.after } : {}),
      done: Item?.closed === true,
      failures: 0,
      retryAt: 0,
    };
  }

  async function refreshShards() {
    let start: string | undefined;
    do {
      const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: streamArn, ExclusiveStartShardId: start }));
      for (const shard of StreamDescription?.Shards ?? []) {
        if (!shard.ShardId || shards.has(shard.ShardId)) continue;
        shards.set(shard.ShardId, await loadShard(shard));
      }
      start = StreamDescription?.LastEvaluatedShardId;
    } while (start);
    lastRefresh = Date.now();
  }

  async function savePosition(state: ShardState, closed = false) {
    await options.db.send(
      new PutCommand({
        TableName: options.tables.control,
        Item: {
          ...positionKey(name, streamArn, state.id),
          ...(state.after ? { after: state.after } : {}),
          closed,
          at: new Date().toISOString(),
        },
      }),
    );
  }

  async function iteratorFor(state: ShardState): Promise<string | undefined> {
    const at = (after: string | undefined) =>
      streams.send(
        new GetShardIteratorCommand({
          StreamArn: streamArn,
          ShardId: state.id,
          ...(after ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: after } : { ShardIteratorType: "TRIM_HORIZON" }),
        }),
      );
    try {
      return (await at(state.after)).ShardIterator;
    } catch (error) {
      if ((error as { name?: string }).name !== "TrimmedDataAccessException") throw error;
      // The stream no longer holds the records after the position (24 hours passed): nothing can bring them back.
      console.error(
        JSON.stringify({
          level: "error",
          component: name,
          message: "records after the outbox position left the stream",
          shard: state.id,
        }),
      );
      state.after = undefined;
      return (await at(undefined)).ShardIterator;
    }
  }

  /** Reads one batch of a shard; true when it read records. */
  async function readShard(state: ShardState): Promise<boolean> {
    if (Date.now() < state.retryAt) return false;
    state.iterator ??= await iteratorFor(state);
    if (!state.iterator) {
      state.done = true;
      await savePosition(state, true);
      return false;
    }
    let answer: GetRecordsCommandOutput;
    try {
      answer = await streams.send(new GetRecordsCommand({ ShardIterator: state.iterator, Limit: 1000 }));
    } catch (error) {
      // DynamoDB Local answers this for an iterator taken on a shard it had just opened: take one again.
      if ((error as { name?: string }).name !== "TrimmedDataAccessException" || state.after) throw error;
      state.iterator = undefined;
      return false;
    }
    const { Records = [], NextShardIterator } = answer;
    if (Records.length > 0) {
      const records = Records as OutboxStreamRecord[];
      const result = await (options.wrap ? options.wrap(() => handle(records)) : handle(records));
      published += result.done;
      if (result.failedAt !== undefined) {
        // Resume at the first record the bus did not take: everything before it is published.
        const at = Records.findIndex((record: _Record) => record.dynamodb?.SequenceNumber === result.failedAt);
        const before = at > 0 ? Records[at - 1]!.dynamodb?.SequenceNumber : undefined;
        if (before) {
          state.after = before;
          await savePosition(state);
        }
        state.iterator = undefined;
        state.failures += 1;
        state.retryAt = Date.now() + Math.min(maxBackoffMs, 50 * 2 ** state.failures);
        console.error(
          JSON.stringify({
            level: "error",
            component: name,
            message: "handling committed records failed; retrying from the stream",
            attempt: state.failures,
            error: String(result.error),
          }),
        );
        return false;
      }
      state.failures = 0;
      state.after = Records.at(-1)!.dynamodb?.SequenceNumber ?? state.after;
      await savePosition(state);
    }
    state.iterator = NextShardIterator;
    if (!NextShardIterator) {
      state.done = true;
      await savePosition(state, true);
    }
    return Records.length > 0;
  }

  /** An idle reader's pause, cut short by `caughtUp` (a test or a bench waiting for the outbox). */
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });

  const loop = (async () => {
    while (!stopping) {
      const started = round;
      let read = false;
      let behind = false;
      try {
        if (Date.now() - lastRefresh > 1_000 || ![...shards.values()].some((state) => !state.done)) await refreshShards();
        for (const state of shards.values()) {
          if (state.done || (state.parent && shards.get(state.parent)?.done === false)) continue;
          if (await readShard(state)) read = true;
          if (state.failures > 0) behind = true;
        }
      } catch (error) {
        // The stream or the store refused a read: the position is unchanged, the next round tries again.
        for (const state of shards.values()) state.iterator = undefined;
        behind = true;
        if (!stopping)
          console.error(JSON.stringify({ level: "error", component: name, message: "reading the stream failed", error: String(error) }));
        await sleep(200);
      }
      round += 1;
      if (!read && !behind) quietRound = started;
      if (read) idleFor = pollMs;
      else {
        // Doubled before the pause, not after: a nudge during the pause sets the next wait, which must stay the short one.
        const wait = idleFor;
        idleFor = Math.min(idlePollMs, idleFor * 2);
        await pause(wait);
      }
    }
  })();

  return {
    published: () => published,
    nudge() {
      // A commit here: read at once, then again after the short interval, doubling (its records may take a few ms to
      // show on the stream). Polling at the short interval for a whole second, as before, cost about 80 stream reads
      // per commit, on the cores a revocation's fan-out to a thousand PEPs needs (bench:feed).
      idleFor = pollMs;
      wake?.();
    },
    async caughtUp(timeoutMs = 10_000) {
      const from = round;
      const deadline = Date.now() + timeoutMs;
      wake?.();
      while (quietRound < from) {
        if (Date.now() > deadline) return false;
        await sleep(5);
      }
      return true;
    },
    async stop() {
      stopping = true;
      await loop;
      streams.destroy();
    },
  };
}
