/**
 * The cost model's inputs, in one file, so they can be updated when the write path changes.
 * `measured`: per applied operator event, from `npm run cost -- --measure` (bench/cost/measure.ts,
 * the local runtime with ReturnConsumedCapacity on every DynamoDB call). `assumed`: what no bench
 * here can measure (Lambda durations in AWS, record sizes, fleet shape); each says why it is what it is.
 */
import { auditRetentionDays } from "../../packages/core/src/config.ts";

export const measured = {
  /** Date and command of the measurement these figures come from. */
  source:
    "write units: 2026-12-04 (latest), EVENTS=5000 DEVICES=100 FROM=4000 npm run cost -- --measure, transactions counted item by item (see writeUnits); bus events and invocations: 2026-12-04 (later), a request's facts packed in one bus entry, EVENTS=5000 DEVICES=100 FROM=4000 npm run cost -- --measure (1.1 and 0.6; its write units 13.1 in that run as reported, before transactions were counted item by item); consumer time and read units: BATCH=10 npm run bench:write (see consumerMs, readUnits); before packing, read units: 2026-12-04 (later), bench:write, one fact at a time per writer instance, 8 writers (see readUnits); the rest: 2026-12-03 (latest), EVENTS=5000 DEVICES=100 FROM=4000 npm run cost -- --measure (steady state: every device item holds a full 32-fact window; UUID event keys; ReturnConsumedCapacity INDEXES), the code before the binding change (b7b3e49) and after it (ab8ee7c) in one run, side by side, as reported (these and the spread below predate counting transactions item by item): 14.45 and 12.46 WCU (4.7 read units, one process coalescing the runs). The mix varies between runs of the same code, by the order the applier meets the facts in (a fact older than its device's newest folds in as stale, 2 units, where an applied one costs about 14): b7b3e49 measured 10.33, 10.35 and 14.45, ab8ee7c 13.17, 13.31 and 12.46 (earlier that day, before history left the transaction: 12.62 and 12.93; before the listing index stopped copying what every fact rewrites: 16.75 to 17.88). Compare within one run; the steady one-at-a-time figure is docs/write-path.md's (14.0)",
  perAppliedEvent: {
    /**
     * DynamoDB write request units (transactions count 2 per item), GSI copies included. The measured
     * mix is attach/detach facts arriving 10 to a webhook, each changing its device's state. Most of it
     * is the change's transaction: the device item (about 1.7 KB with its deflated 32-fact window, twice
     * in a transaction), binding or its removal (kept in the table, no index copy), audit record, shard head;
     * the history reader's listing item and lease item (1 each, outside the transaction); the sequencer's
     * feed version and head are shared by the facts of one run. The device's copy in the listing index is
     * no longer written by a fact that changes only its sessions (it copies the enforcement view alone).
     * Reads include each binding's revision, read before a fact moves an address and by each sequencing. Before the window was deflated, the audit
     * index copied keys only and versions named only the heads that moved, the same mix measured 22.05
     * and 22.4 (counter event keys); applied one at a time, 20.5 (steady state, docs/write-path.md). A sequencing
     * run of one version writes it and the head without a transaction (2 units, not 4): one at a time that is 2
     * units per event, in this mix (many facts per run) it is within the runs' spread.
     * 13.6 since 2026-12-04 (latest): DynamoDB Local reports a transaction's units per table counting each distinct
     * unit count once (two 4-unit device items of one shard's coalesced commit as 4), so the measure now counts a
     * transaction item by item (test/support/billed-units.ts). Same command, same runs, as reported and as billed:
     * 13.18 → 13.64, 12.79 → 13.53 (and 13.70, 13.63, 13.64 billed). Was 12.5 from the figures as reported. Their
     * spread between runs of one code (10.33 to 14.45 below) was mostly the meter's: how many of a run's commits
     * coalesced into shared transactions, which the report counted short. Counted item by item, runs span 13.53 to 13.70.
     */
    writeUnits: 13.6,
    /**
     * Not from the measure above: that runs one process, whose sequencing runs each carry many facts, where in AWS each
     * Lambda instance applies one fact an invocation and checks its turn to sequence after it. `EVENTS=320 DEVICES=256
     * WRITERS=1,8,32 npm run bench:write` counts read units per applied fact with each writer process applying one fact
     * at a time (2026-12-04, two rounds each, before and after the probe, `probeTurn` in core ledger/sequencer.ts):
     * 8 writers 31.4 and 30.6 before, 19.0 and 18.0 after; 1 writer 21.2 both; 32 writers 75 to 82 before, 65 to 67
     * after (there DynamoDB Local takes hundreds of ms a call, so followers outwait the 500 ms and run themselves). The
     * fleet here (10 tenants of 100k devices, ~58 applied events a second each) keeps a few instances committing on a
     * tenant at once: the 8-writer figure. The single-process measure gave 4.7: the laptop hid ~14 read units an event.
     * Later on 2026-12-04, once a run that may yield reads only the shard heads its decision needs consistently
     * (`consistentShards` in core ledger/sequencer.ts), `EVENTS=320 DEVICES=256 WRITERS=1,8 READS_BY=1 npm run
     * bench:write`, before and after alternately, two rounds each: 8 writers 18.8, 17.8 → 16.5, 17.7; 1 writer 21.1,
     * 21.2 → 13.6, 13.7 (the cut 16.0 → 8.5 units a fact: its own shard consistently, 15 at half).
     * With a request's facts packed in one entry (`BATCH=10`, same command, 2026-12-04, two rounds): 1 writer 13.6, 13.6
     * → 6.1, 7.1; 8 writers (each applying 10 facts at once), `WRITERS=8` on an idle machine, 16.6, 17.0 → 14.8, 16.0.
     * Taken at the 8-writer figure, 15.4: packing halves the reads where a tenant's entries do not contend, which this
     * fleet's rate (5.8 entries a second a tenant) may well give, but 8 contending writers save a tenth.
     */
    readUnits: 15.4,
    /**
     * EventBridge PutEvents entries: the ingested fact's share of its request's packed entry (webhooks carry 10 facts,
     * one entry: core ingest/reported.ts), and the applied change. 2 while each fact was an entry of its own.
     */
    busEvents: 1.1,
    /**
     * Consumer invocations: the applier, and every rule whose deployed pattern matches the applied change:
     * detectors (attaches); automation and webhooks only for a tenant with a rule or subscription (the
     * outbox names them in `resources`; none here); the IoT, posture and SIEM integrations only for their
     * tenant (none here). 4.5 while every rule matched every tenant's changes; 1.5 while the applier was invoked per
     * fact (now once per packed entry of a request's facts, 10 here: 0.1, and the detectors' 0.5).
     */
    consumerInvocations: 0.6,
    /** The applier's queue: one message per packed entry (10 facts here); none for the applied change. */
    queueMessages: 0.1,
    /**
     * Billed consumer milliseconds per applied event: the detectors' 0.5 invocations at `assumed.consumerMs` (30 ms), and
     * the applier's share of an entry's invocation. `EVENTS=320 DEVICES=256 WRITERS=1,8 BATCH=10 npm run bench:write`
     * against the same without BATCH, 2026-12-04, two rounds each, one writer applying one entry (or fact) at a time:
     * 34 and 45 facts applied a second packed, 14 and 24 one per invocation, so an entry of 10 takes 0.41 and 0.53 of
     * ten lone facts' time (their commits share transactions and sequencing runs). Counted at 0.75 of `consumerMs` a fact
     * (45 ms), as DynamoDB Local's latency is not AWS's: 75 ms per event, 90 while each fact was an invocation.
     */
    consumerMs: 75,
    /** API requests: webhooks carry 10 facts each. */
    apiRequests: 0.1,
  },
} as const;

/** Issue 9's target for the write path: at most 8 write units per applied operator event (not reached: see docs/write-path.md). */
export const writePathTarget = { writeUnits: 8 } as const;

export const assumed = {
  /** Billed duration of a consumer invocation (one fact: a few DynamoDB calls at ~5 ms each). */
  consumerMs: 60,
  /** Billed duration of an API request that is not a feed long poll. */
  apiMs: 50,
  /** An SQS event source mapping's pollers while its queue is empty (Lambda starts with five). */
  queuePollers: 5,
  /** Memory of every function (platform `functions`), GB. */
  memoryGb: 1,
  /** Bytes stored per applied event: its audit record and feed entry (the device item is overwritten). */
  storedBytesPerEvent: 800,
  /** Days audit records stay in DynamoDB before their TTL (archived to S3 first): the deployment's setting. */
  auditRetentionDays: auditRetentionDays(),
  /**
   * A PEP on the push channel refreshes the signed head this often when no notice came: half the head's 8 s lifetime
   * (pep sync.ts; before 2026-12-04 it waited 20 s and failed closed while idle).
   */
  idlePollSeconds: 4,
  /**
   * A feed entry as a notice carries it (JSON), and entries per applied event: an attach or detach moves one binding
   * (~130 bytes), a state change adds its device (~300). A notice is at most one a second per tenant (the model's
   * premise, see `notices` in model.ts), its signed head and envelope ~900 bytes.
   */
  feedEntryBytes: 150,
  feedEntriesPerEvent: 1,
  noticeHeadBytes: 900,
  /**
   * What a notice's entries gzip to, against their JSON, when the notice is over one IoT Core message: the feed's
   * version records store the same entries deflated, measured at 0.17 of their JSON for versions of 10 to 29 binding
   * entries and 0.14 for 30 or more (`node bench/write/version-size.ts`, docs/write-path.md); 0.2 leaves room for
   * gzip's header and for entries less alike than a storm's attaches.
   */
  noticeEntriesGzipRatio: 0.2,
  /** Devices behind one enforcement point (PEP), which polls the feed. */
  devicesPerPep: 1_000,
  /** Devices per tenant (one signed feed head per tenant per second at most: herd sharing). */
  devicesPerTenant: 100_000,
  /** CloudWatch log bytes per applied event (one request line, one consumer line). */
  logBytesPerEvent: 400,
  /**
   * The audit table's stream readers (infra/outbox.ts), invoked per stream shard, not per fact: billed duration of
   * one invocation of the outbox (a PutEvents of the batch) and of the history (a BatchWriteItem of its items).
   */
  outboxMs: 30,
  /** The history's own work per invocation (a BatchWriteItem of its items, a read of the feed head). */
  historyMs: 20,
  /**
   * The wait for a burst's trailing notice (core ledger/catch-up.ts `announceTrailing`, awaited before the function
   * returns). One invocation per notice waits: the first to find versions untold after a notice, which takes it on
   * (marking the feed head: 1 write unit). A tenant of this fleet has about 12.5 history invocations a second, so the
   * first comes about 0.1 s into the 1 s notice interval and waits the rest (a helper review's figure; half the
   * interval is a random invocation's wait). Until 2026-12-04 every invocation that found versions untold waited, up to
   * 16 per tenant at once, half the interval each on average.
   */
  trailingWaitMs: 900,
  /** New audit records per applied event (the records the readers' filter lets through; versions and listings are not). */
  auditRecordsPerEvent: 1,
  /** The audit table's share of the write units (`WRITERS= npm run bench:write`, steady state: audit 4 of 14). */
  auditWriteUnitsPerEvent: 4,
  /**
   * A DynamoDB partition holds at most 10 GB and takes at most 1,000 write units a second; its stream has one shard
   * per partition (AWS DynamoDB developer guide, "partitions and data distribution"; "DynamoDB Streams").
   */
  partitionGb: 10,
  partitionWriteUnitsPerSecond: 1_000,
} as const;
