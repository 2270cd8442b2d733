import { retryPolicy } from "./bus-names.ts";

/**
 * The timeouts of the request path, end to end, in one place so they cannot disagree:
 * the PEP waits longer than the gateway, the gateway longer than the function, the
 * function longer than the feed's long poll plus its reads and signing, and each SDK call
 * gives up (and is retried or answered 503) well inside the function's time.
 *
 *   PEP timeout (wait + 15 s) > HTTP API (30 s) > API function (29 s) > feed wait (20 s) + reads
 */
export const timeouts = {
  /** The HTTP API's integration limit: a hard maximum of API Gateway. */
  gatewaySeconds: 30,
  /** The API function's Lambda timeout: it must answer before the gateway gives up. */
  apiFunctionSeconds: 29,
  /**
   * How long a change an API request makes may wait for its turn at its shard (contention) or be retried (throttling):
   * past it the request is answered 503 with Retry-After, leaving 9 s of the function's time for the rest of its work.
   */
  apiChangeSeconds: 20,
  /** The longest long poll `/v1/feed?wait=` allows, leaving 9 s for reads, signing and a cold start. */
  feedWaitSeconds: 20,
  /** A bus consumer's Lambda timeout. */
  consumerFunctionSeconds: 60,
  /** TCP connect to DynamoDB, KMS, EventBridge, SQS (a regional endpoint connects in milliseconds). */
  sdkConnectionMs: 1_000,
  /** One SDK request attempt, from sending to the whole response: a store that never answers fails here. */
  sdkRequestMs: 3_000,
  /**
   * The same against DynamoDB Local: a JVM on a laptop (or a busy CI machine) stalls for seconds at
   * times (GC, disk), which must not fail requests; a paused or silent one is still answered 503.
   */
  localSdkRequestMs: 10_000,
  /** SDK attempts per call (the first plus retries): 3 x 3 s + backoff stays under 10 s. */
  sdkMaxAttempts: 3,
  /** What a 503 tells clients to wait before trying again. */
  retryAfterSeconds: 2,
} as const;

/**
 * The applier's queue in AWS (infra/bus.ts): the target of the rule that carries reported facts (`queued` in
 * platform/rules.ts) is an SQS queue, which Lambda reads in batches (an event source mapping) and which is ingestion's
 * backlog: `POST /v1/ingest` answers 503 once its depth passes `SIMROOT_INGEST_MAX_BACKLOG` (core ingest/backlog.ts).
 * Locally the bus's pending deliveries are that backlog.
 */
export const applierQueue = {
  /** Messages per invocation, each an entry of up to 25 facts; a message that fails is received again alone. */
  batchSize: 10,
  /**
   * How long a received message stays hidden: at least the function's timeout (Lambda refuses less), six times it as
   * AWS advises so a batch Lambda retries after a throttle is not received twice. A failed message is retried after it.
   */
  visibilityTimeoutSeconds: 6 * timeouts.consumerFunctionSeconds,
  /**
   * Receives before a message goes to the rule's dead-letter queue. A receive counts even when Lambda throttles the
   * invocation or it times out, so more than the handler's attempts on the local bus (`retryPolicy.handlerAttempts`):
   * AWS advises at least 5 for a queue Lambda reads.
   */
  maxReceiveCount: Math.max(5, retryPolicy.handlerAttempts),
  /**
   * What the queue keeps, SQS's longest: an accepted fact is never dropped for its age while it waits. Ingestion's
   * bound, not an age, keeps the wait short.
   */
  retentionSeconds: 14 * 24 * 60 * 60,
  /** Instances reading the queue at most (the mapping's maximum concurrency, 2 to 1,000): what caps the applier's writes. */
  maximumConcurrency: 100,
} as const;

/**
 * Each rule's dead-letter queue in AWS (infra/bus.ts): what EventBridge could not deliver and what a consumer failed on
 * after its retries, read by the dead-letter drain (`deadLetterDrain`, a consumer's timeout) into the tenant's list
 * at `/v1/bus/dead-letters`.
 */
export const deadLetterQueue = {
  /**
   * As the applier's queue: Lambda refuses to read a queue whose received messages may show again before the function
   * can end (SQS's default of 30 s is under the drain's timeout), and asks for six times the timeout.
   */
  visibilityTimeoutSeconds: 6 * timeouts.consumerFunctionSeconds,
  /** SQS's longest (its default is 4 days): a failed event waits for the drain, or a redrive, as long as SQS allows. */
  retentionSeconds: 14 * 24 * 60 * 60,
} as const;

/** How every function is bundled, by SST in AWS and by `bench/bundle` here. */
export const bundling = {
  /** The runtime ships the AWS SDK v3: it stays out of every bundle. */
  external: ["@aws-sdk/*", "@smithy/*", "@aws-crypto/*"],
  minify: true,
  /** Minified bytes per function (AWS SDK excluded). */
  budgetBytes: 300 * 1024,
  /** Median module initialisation on the development machine. */
  initBudgetMs: 100,
  /**
   * Functions known to exceed `budgetBytes`, each with the ceiling it must not grow past and
   * why. The bundle test fails when one grows past its ceiling, and when one is back under
   * budget (so the exception is removed, not forgotten).
   */
  /*
   * The API was the one exception (ceiling 640 KB) until it became four functions (five since 2026-12-05), one per route
   * group (api `groups/`), none of them carrying the OpenAPI generator or asn1js: every function is
   * within budget now. What is left in each is mostly shared: zod's classic API (~90 KB, imported by
   * core's schemas; its JSON Schema conversion is left out by infra/esbuild-plugins.mjs), Powertools
   * (~31 KB), Hono (~24 KB).
   */
  // 2026-12-07: apiEnforcement was 310,287 bytes, 1% past the budget, after reviews 122 to 127 added what the feed, the
  // policy routes and the audit walk check; an exception until the schemas' descriptions and examples, which only the
  // documents' generators read, were left out of every bundle (infra/esbuild-plugins.mjs `withoutSchemaDocs`): 302,121.
  // Then 307,274 when DynamoDB clients took DynamoDB Local's credentials from config (review 146, the tests' database
  // per file), until DynamoDB Local's client settings were left out of every bundle (infra/esbuild-plugins.mjs
  // `dynamoLocalLeftOut`): 307,005.
  overBudget: {} as Readonly<Record<string, { readonly ceilingBytes: number; readonly why: string }>>,
} as const;

/**
 * How Lambda reads the audit table's stream (infra/outbox.ts), and so what the readers cost (bench/cost). Lambda
 * polls every shard of the stream (one per partition of the table) 4 times a second; with no batching window every
 * poll that finds a record invokes the function, so a large audit table (hundreds of 10 GB partitions) invokes each
 * reader nearly once per record. A window gathers a shard's records for that long first: at most one invocation per
 * shard per window (or per full batch).
 */
export const streamReaders = {
  /** Records per outbox invocation: it publishes them 10 to a PutEvents call, and does not wait. */
  outboxBatchSize: 100,
  /** The outbox publishes derived events (automation, webhooks, parked facts): it does not wait. */
  outboxWindowSeconds: 0,
  /**
   * Records per history invocation. Lambda gives a stream shard one invocation at a time, and a history invocation
   * may wait up to a second for a burst's trailing notice (catch-up.ts `announceTrailing`): with 100 records a batch
   * that caps a shard near 100 records a second, under the 125 a second of each ledger shard of a tenant changing
   * 2,000 times a second (more where a partition holds several). With 1,000 (Lambda allows 10,000; about 2 KB a
   * record as streamed, 2 MB of the 6 MB an invocation takes) and its items written 4 calls at a time, a shard keeps up
   * with ~800 a second, above the ~500 records a second one audit partition takes (docs/write-path.md, "The history").
   */
  historyBatchSize: 1_000,
  /**
   * The history (a subject's listing, the IP lease items) is read by people and audits and is eventually consistent
   * already; but it is also the feed's backstop (core ledger/catch-up.ts: records their committer left unsequenced,
   * 2 s after their commit), so it waits for a fuller batch no longer than a second.
   */
  historyWindowSeconds: 1,
  /** How often Lambda polls each shard with no window (documented: every 250 ms). */
  pollsPerSecond: 4,
} as const;
