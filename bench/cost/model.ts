/** The monthly AWS bill of a fleet, line by line, from bench/cost/inputs.ts and bench/cost/prices.ts. */
import { iotMessageUnitBytes, noticeDeltaMaxBytes } from "../../packages/core/src/feed/notifier.ts";
import { shardCount } from "../../packages/core/src/ledger/shard.ts";
import { functions } from "../../packages/core/src/platform/functions.ts";
import { streamReaders, timeouts } from "../../packages/core/src/platform/limits.ts";
import { assumed } from "./inputs.ts";
import { prices } from "./prices.ts";

export interface PerEvent {
  readonly writeUnits: number;
  readonly readUnits: number;
  readonly busEvents: number;
  readonly consumerInvocations: number;
  /** Messages through the applier's queue (core platform/limits.ts `applierQueue`): its packed entries, and facts requeued alone. */
  readonly queueMessages?: number;
  /**
   * Billed consumer milliseconds per applied event, over all its invocations (default: `consumerInvocations` times
   * `assumed.consumerMs`, each invocation one fact). An applier invocation of a packed entry applies many facts.
   */
  readonly consumerMs?: number;
  readonly apiRequests: number;
}

export type FeedMode = "long-poll" | "short-poll" | "push";

export interface Scenario {
  readonly devices: number;
  readonly eventsPerDevicePerDay: number;
  readonly perEvent: PerEvent;
  /** How PEPs learn changes: a Lambda held for the long poll, a 50 ms poll each wait period, or pushed. */
  readonly feed: FeedMode;
  /**
   * Provisioned capacity at this utilisation instead of on-demand (undefined: on-demand). A table's capacity mode is one
   * for its reads and its writes: both are provisioned.
   */
  readonly provisionedUtilisation?: number;
}

const million = 1_000_000;
export const secondsPerMonth = 30.4 * 24 * 3600;

export function monthlyCost(scenario: Scenario): {
  lines: Record<string, number>;
  total: number;
  perDevice: number;
  events: number;
  storedGb: number;
  tenants: number;
  /** A notice's size at the fleet's change rate, whether it carries its change, and the IoT messages it bills. */
  notice: { bytes: number; carried: boolean; units: number; gzipped: boolean };
} {
  const events = scenario.devices * scenario.eventsPerDevicePerDay * 30.4;
  const e = scenario.perEvent;
  // Provisioned: the month's average units a second, over the utilisation, for every hour of the month.
  const provisioned = (units: number, perUnitHour: number) =>
    (units / secondsPerMonth / scenario.provisionedUtilisation!) * (secondsPerMonth / 3600) * perUnitHour;
  const writeUnits = events * e.writeUnits;
  const dynamoWrites =
    scenario.provisionedUtilisation === undefined
      ? (writeUnits / million) * prices.dynamodb.perMillionWriteUnits
      : provisioned(writeUnits, prices.dynamodb.provisionedWcuHour);
  const readUnits = events * e.readUnits;
  const dynamoReads =
    scenario.provisionedUtilisation === undefined
      ? (readUnits / million) * prices.dynamodb.perMillionReadUnits
      : provisioned(readUnits, prices.dynamodb.provisionedRcuHour);
  const storedGb = (events * assumed.storedBytesPerEvent * (assumed.auditRetentionDays / 30.4)) / 1e9;
  const archivedGbPerMonth = (events * assumed.storedBytesPerEvent) / 1e9;
  const peps = Math.ceil(scenario.devices / assumed.devicesPerPep);
  const tenants = Math.ceil(scenario.devices / assumed.devicesPerTenant);
  // On the push channel a notice carries its change, signed (core feed/notifier.ts), when it fits in
  // `noticeDeltaMaxBytes`: the PEP then makes no request for it; a larger one travels bare and each PEP polls once for
  // it. PEPs poll every `idlePollSeconds` in the seconds with no notice. At most one notice a second per tenant while it
  // changes (core sequencer.ts `noticeIntervalMs`, across instances; urgent changes at once: rare, not counted).
  const changesPerSecondPerTenant = Math.min(1, events / tenants / secondsPerMonth);
  const eventsPerNotice = events / tenants / secondsPerMonth / Math.max(changesPerSecondPerTenant, Number.MIN_VALUE);
  const entryBytes = eventsPerNotice * assumed.feedEntriesPerEvent * assumed.feedEntryBytes;
  // A notice's JSON over one IoT Core message is sent gzipped (notifier.ts `noticePayload`): its entries shrink as the
  // feed's version records measure them, its signed head (hashes, a signature) counted as it is.
  const json = assumed.noticeHeadBytes + entryBytes;
  const noticeBytes =
    json <= iotMessageUnitBytes ? json : Math.min(json, assumed.noticeHeadBytes + entryBytes * assumed.noticeEntriesGzipRatio);
  const carried = noticeBytes <= noticeDeltaMaxBytes;
  // IoT Core bills a message per 5 KB, to each subscriber.
  const noticeUnits = carried ? Math.ceil(noticeBytes / iotMessageUnitBytes) : 1;
  const pushedPollsPerPep =
    (carried ? 0 : secondsPerMonth * changesPerSecondPerTenant) +
    (secondsPerMonth * (1 - changesPerSecondPerTenant)) / assumed.idlePollSeconds;
  // Delivered to each PEP, and published twice (with its delta, and bare for keys bound to a selector: review 98).
  const notices = scenario.feed === "push" ? (peps + 2 * tenants) * secondsPerMonth * changesPerSecondPerTenant * noticeUnits : 0;
  // Each carried notice is signed once, by the instance that sends it.
  const noticeSignatures = tenants * secondsPerMonth * changesPerSecondPerTenant;
  const pollsPerPep = scenario.feed === "push" ? pushedPollsPerPep : secondsPerMonth / timeouts.feedWaitSeconds;
  const polls = peps * pollsPerPep;
  const pollSeconds = scenario.feed === "long-poll" ? timeouts.feedWaitSeconds : 0.05;
  const lambdaRequests = events * (e.consumerInvocations + e.apiRequests) + polls;
  const gbSeconds =
    assumed.memoryGb *
    ((events * ((e.consumerMs ?? e.consumerInvocations * assumed.consumerMs) + e.apiRequests * assumed.apiMs)) / 1000 +
      polls * pollSeconds);
  // The applier's queue: EventBridge sends each message, Lambda receives and deletes it (a request each, counted per
  // message as a light load batches them: one a batch), and its event source mapping's pollers long-poll (20 s) while
  // it is empty. Ingestion reads the depth at most once a second per API instance (core ingest/backlog.ts), and at
  // most once a request: the instances as many as the webhooks' rate keeps busy.
  const webhooksPerSecond = (events * e.apiRequests) / secondsPerMonth;
  const apiInstances = Math.max(1, Math.ceil((webhooksPerSecond * assumed.apiMs) / 1000));
  const queueRequests =
    events * (e.queueMessages ?? 0) * 3 +
    (assumed.queuePollers * secondsPerMonth) / 20 +
    Math.min(events * e.apiRequests, apiInstances * secondsPerMonth);
  const readers = streamReaderInvocations(events, storedGb, tenants);
  // One history invocation waits for each trailing notice: at most one a second per changing tenant (each takes it on
  // with one conditional write to the feed head).
  const trailingWaits = Math.min(readers.history, tenants * secondsPerMonth * changesPerSecondPerTenant);
  // At their own memory (platform functions: stream readers have less than the consumers).
  const readerGbSeconds =
    ((functions.outbox.memoryMb / 1024) * readers.outbox * assumed.outboxMs +
      (functions.history.memoryMb / 1024) * (readers.history * assumed.historyMs + trailingWaits * assumed.trailingWaitMs)) /
    1000;
  const lines = {
    "DynamoDB writes": dynamoWrites,
    "DynamoDB reads": dynamoReads,
    "DynamoDB storage + PITR (steady state, audit retention)":
      storedGb * (prices.dynamodb.storagePerGbMonth + prices.dynamodb.pitrPerGbMonth),
    "S3 archive (grows each month by)": archivedGbPerMonth * prices.s3.glacierInstantPerGbMonth,
    "EventBridge events": ((events * e.busEvents) / million) * prices.eventbridge.perMillionEvents,
    "SQS (the applier's queue)": (queueRequests / million) * prices.sqs.perMillionRequests,
    "Lambda requests": (lambdaRequests / million) * prices.lambda.perMillionRequests,
    "Lambda duration": gbSeconds * prices.lambda.arm64PerGbSecond,
    // Each history invocation also reads the feed head of its batch's tenant (the feed's backstop: one consistent read
    // of a small item, 1 read unit; a batch is one stream shard's records, one tenant's ledger shard), and the one that
    // takes on a trailing notice writes the head (1 write unit).
    "Lambda: the audit stream's readers (outbox, history)":
      ((readers.outbox + readers.history) / million) * prices.lambda.perMillionRequests +
      readerGbSeconds * prices.lambda.arm64PerGbSecond +
      (readers.history / million) * prices.dynamodb.perMillionReadUnits +
      (trailingWaits / million) * prices.dynamodb.perMillionWriteUnits,
    "API Gateway (webhooks + feed polls)": ((events * e.apiRequests + polls) / million) * prices.apiGateway.httpApiPerMillion,
    "IoT Core (feed notices to PEPs, their connections)":
      (notices / million) * prices.iotCore.messagingPerMillionFirstBillion +
      (scenario.feed === "push" ? ((peps * secondsPerMonth) / 60 / million) * prices.iotCore.connectivityPerMillionMinutes : 0),
    "KMS (key + feed head signatures)":
      prices.kms.perKeyMonth +
      ((Math.min(tenants * secondsPerMonth, polls) + (scenario.feed === "push" && carried ? noticeSignatures : 0)) / million) *
        prices.kms.asymmetricPerMillionRequests,
    "CloudWatch Logs": ((events * assumed.logBytesPerEvent) / 1e9) * prices.cloudwatchLogs.ingestPerGb,
  };
  const total = Object.values(lines).reduce((sum, value) => sum + value, 0);
  return {
    lines,
    total,
    perDevice: total / scenario.devices,
    events,
    storedGb,
    tenants,
    notice: { bytes: Math.round(noticeBytes), carried, units: noticeUnits, gzipped: noticeBytes < json },
  };
}

/**
 * Invocations a month of the audit stream's two readers. The stream has a shard per partition of the audit table (by
 * its size in the retention, or by its write rate); Lambda polls each shard 4 times a second and, with no batching
 * window, invokes on every poll that finds a record (records arriving as a Poisson process); with a window, once per
 * window after the first record (or per full batch). New records go to the end of their ledger shard's chain (one
 * partition key per tenant and ledger shard, its sort key rising), so at most that many shards receive any: a large
 * table's other partitions hold older records only.
 */
export function streamReaderInvocations(
  eventsPerMonth: number,
  storedGb: number,
  tenants: number,
  historyWindowSeconds: number = streamReaders.historyWindowSeconds,
) {
  const recordsPerSecond = (eventsPerMonth * assumed.auditRecordsPerEvent) / secondsPerMonth;
  const partitions = Math.max(
    1,
    Math.ceil(storedGb / assumed.partitionGb),
    Math.ceil(((eventsPerMonth / secondsPerMonth) * assumed.auditWriteUnitsPerEvent) / assumed.partitionWriteUnitsPerSecond),
  );
  const shards = Math.min(partitions, tenants * shardCount);
  const perShard = recordsPerSecond / shards;
  const perSecond = (batchSize: number, windowSeconds: number) => {
    if (perShard === 0) return 0;
    const byBatch = perShard / batchSize;
    const byPolls =
      windowSeconds === 0
        ? streamReaders.pollsPerSecond * (1 - Math.exp(-perShard / streamReaders.pollsPerSecond))
        : 1 / (windowSeconds + 1 / perShard);
    return shards * Math.max(byBatch, byPolls);
  };
  return {
    partitions,
    shards,
    recordsPerSecond,
    outbox: perSecond(streamReaders.outboxBatchSize, streamReaders.outboxWindowSeconds) * secondsPerMonth,
    history: perSecond(streamReaders.historyBatchSize, historyWindowSeconds) * secondsPerMonth,
  };
}

/** The same fleet on AWS IoT Core (connected all month, one message per event, one rule) with Device Defender. */
export function iotCoreCost(devices: number, eventsPerDevicePerDay: number) {
  const messages = devices * eventsPerDevicePerDay * 30.4;
  const p = prices.iotCore;
  const first = Math.min(messages, 1e9);
  const lines = {
    "IoT Core connectivity (24/7)": ((devices * 30.4 * 24 * 60) / million) * p.connectivityPerMillionMinutes,
    "IoT Core messaging":
      (first / million) * p.messagingPerMillionFirstBillion + ((messages - first) / million) * p.messagingPerMillionNext,
    "IoT Core rules + actions": (messages / million) * (p.rulesPerMillionTriggered + p.actionsPerMillion),
    "Device Defender audit + detect": devices * (prices.deviceDefender.auditPerDeviceMonth + prices.deviceDefender.detectPerDeviceMonth),
  };
  const total = Object.values(lines).reduce((sum, value) => sum + value, 0);
  return { lines, total, perDevice: total / devices };
}
