/**
 * Alarms and the dashboard for the figures that matter. Alarms notify one SNS topic
 * (subscribe the on-call address after the first deploy: see README "Deploying").
 *
 * - outbox: committed events waiting on the audit stream (IteratorAge), and any the bus refused for good (its dead letters);
 *   records either stream reader dropped (its on-failure queue);
 * - dead letters: any message in a rule's dead-letter queue (an event no consumer could apply);
 * - dead letters waiting: a message the drain did not move within 15 minutes;
 * - consumers: errors, and the age of events waiting for a retry (AsyncEventAge; for the applier, the age of the
 *   oldest message in its queue); the webhook worker's, the dead-letter drain's, the feed authorizer's and (with the
 *   IoT integration) the IoT authorizer's errors;
 *   throttled invocations in the account;
 * - API: 5xx answers, p99 latency near the function timeout (the dashboard shows 4xx, throttled requests among them);
 * - tables: throttle events of each table and index, and system errors;
 * - ingest accepted vs settled vs applied, and change and revocation to the signed feed, from the
 *   EMF metrics the functions print (Powertools; core platform/metrics.ts, namespace `simroot`);
 *   the feed latency alarms per committing function.
 */
import { functions, type FunctionDefinition, type FunctionName } from "../packages/core/src/platform/functions.ts";
import { applierQueue as applierQueueSettings, timeouts } from "../packages/core/src/platform/limits.ts";
import { metricNamespace, type MetricName } from "../packages/core/src/platform/metrics.ts";
import type { RuleName } from "../packages/core/src/platform/rules.ts";
import { tables as tableDefinitions, type TableKey } from "../packages/core/src/platform/tables.ts";
import { api } from "./api";
import { applierQueue, queuedRule } from "./applier-queue";
import { auditArchiver } from "./audit-archive";
import { deadLetterDrain, subscriptions } from "./bus";
import { dynamoTables } from "./database";
import { feedAuthorizerFunction } from "./feed-channel";
import { iotAuthorizerFunction } from "./integrations";
import { webhookWorker } from "./webhooks";
import { history, outbox, streamDiscards } from "./outbox";

export const alarmTopic = new aws.sns.Topic("Alarms");

const region = aws.getRegionOutput().name;
// An age alarm fires on the first minute whose age passes its threshold: that age is how long something waited.
const period = 60;

type AlarmArgs = Omit<aws.cloudwatch.MetricAlarmArgs, "alarmActions" | "okActions" | "evaluationPeriods"> & {
  evaluationPeriods?: number;
};

function alarm(name: string, args: AlarmArgs) {
  return new aws.cloudwatch.MetricAlarm(name, {
    treatMissingData: "notBreaching",
    ...args,
    evaluationPeriods: args.evaluationPeriods ?? 1,
    alarmActions: [alarmTopic.arn],
    okActions: [alarmTopic.arn],
  });
}

// The outbox: records waiting on the audit table's stream (a failing publish holds them; they leave the stream after 24 h).
alarm("OutboxIteratorAge", {
  alarmDescription: "Committed events wait more than 5 minutes to be published (the outbox is failing or throttled)",
  namespace: "AWS/Lambda",
  metricName: "IteratorAge",
  dimensions: { FunctionName: outbox.apply((s) => s.nodes.function.name) },
  statistic: "Maximum",
  period,
  comparisonOperator: "GreaterThanThreshold",
  threshold: 5 * 60 * 1000,
});

// The outbox's dead letters: committed events EventBridge refused for good (core outbox/outbox.ts). No queue holds them
// (the outbox writes them into the tenant's list itself), so the outbox counts them.
alarm("OutboxEventsRefused", {
  alarmDescription:
    "The bus refused committed events for good (over 256 KB, or malformed), or has not taken them for 12 hours (held): no consumer received them. " +
    "Inspect (simroot bus dead-letters, rule outbox) and the outbox's log; redrive the held ones once the bus takes events",
  namespace: metricNamespace,
  metricName: "EventsRefused" satisfies MetricName,
  dimensions: { service: "simroot-outbox" },
  statistic: "Sum",
  period: 300,
  comparisonOperator: "GreaterThanThreshold",
  threshold: 0,
});

// Audit records on the stream that do not parse (a newer release's, or corrupted): the outbox publishes no event for them.
alarm("OutboxRecordsUnreadable", {
  alarmDescription:
    "Audit records on the stream do not parse (written by a newer release, rolled back past; or corrupted): their events were not published. " +
    "The outbox's log names each (pk, sk, eventId); the records stay in the audit table",
  namespace: metricNamespace,
  metricName: "RecordsUnreadable" satisfies MetricName,
  dimensions: { service: "simroot-outbox" },
  statistic: "Sum",
  period: 300,
  comparisonOperator: "GreaterThanThreshold",
  threshold: 0,
});

// The history: records whose subject listing and IP leases wait on the same stream (failing writes hold them).
alarm("HistoryIteratorAge", {
  alarmDescription:
    "Committed records wait more than 5 minutes for their history (subject listing, IP leases): the history function is failing or throttled",
  namespace: "AWS/Lambda",
  metricName: "IteratorAge",
  dimensions: { FunctionName: history.apply((s) => s.nodes.function.name) },
  statistic: "Maximum",
  period,
  comparisonOperator: "GreaterThanThreshold",
  threshold: 5 * 60 * 1000,
});

// What either stream reader dropped: records that left the stream before their function took them (infra/outbox.ts).
alarm("StreamDiscards", {
  alarmDescription:
    "Audit records left the stream before the outbox or the history took them: their events were not published, or their history not written. " +
    "Each message names the batch (stream shard, sequence numbers, when the stream got them): README, Events, says how to repair",
  namespace: "AWS/SQS",
  metricName: "ApproximateNumberOfMessagesVisible",
  dimensions: { QueueName: streamDiscards.nodes.queue.name },
  statistic: "Maximum",
  period,
  comparisonOperator: "GreaterThanThreshold",
  threshold: 0,
});

const ruleNames = Object.keys(subscriptions) as RuleName[];

for (const rule of ruleNames) {
  const { subscriber, deadLetterQueue } = subscriptions[rule];
  const functionName = subscriber.apply((s) => s.nodes.function.name);
  // The drain moves each dead letter into the tenant's list at once, so the queue's depth stays near 0: alarm on arrivals,
  // as the drain receives them (SQS does not count in NumberOfMessagesSent what a queue's redrive policy moved).
  alarm(`${rule}DeadLetters`, {
    alarmDescription: `Events rule ${rule} could not apply reached its dead-letter queue: inspect (simroot bus dead-letters) and redrive`,
    namespace: "AWS/SQS",
    metricName: "NumberOfMessagesReceived",
    dimensions: { QueueName: deadLetterQueue.nodes.queue.name },
    statistic: "Sum",
    period: 300,
    comparisonOperator: "GreaterThanThreshold",
    threshold: 0,
  });
  // Depth too: the drain empties the queue at once, so a message kept 15 minutes means the drain is not reading it (its
  // mapping disabled, or failing), and SQS deletes it 14 days after it arrived.
  alarm(`${rule}DeadLettersWaiting`, {
    alarmDescription: `Dead letters of rule ${rule} wait more than 15 minutes in their queue: the dead-letter drain is not moving them (see its log)`,
    namespace: "AWS/SQS",
    metricName: "ApproximateAgeOfOldestMessage",
    dimensions: { QueueName: deadLetterQueue.nodes.queue.name },
    statistic: "Maximum",
    period: 300,
    comparisonOperator: "GreaterThanThreshold",
    threshold: 15 * 60,
  });
  alarm(`${rule}Errors`, {
    alarmDescription: `Consumer ${rule} fails (Lambda retries, then dead-letters)`,
    namespace: "AWS/Lambda",
    metricName: "Errors",
    dimensions: { FunctionName: functionName },
    statistic: "Sum",
    period: 300,
    comparisonOperator: "GreaterThanThreshold",
    threshold: 5,
  });
  if (rule === queuedRule) {
    // Read from the applier's queue: a failed message is an answer, not an error, and its age is the queue's (below).
    alarm(`${rule}MessagesFailed`, {
      alarmDescription: `Consumer ${rule} answers messages of the applier's queue as failed (received again, then dead-lettered): see its log`,
      namespace: metricNamespace,
      metricName: "QueueMessagesFailed" satisfies MetricName,
      dimensions: { service: `simroot-${rule}` },
      statistic: "Sum",
      period: 300,
      comparisonOperator: "GreaterThanThreshold",
      threshold: 5,
    });
    alarm(`${rule}MessagesUnreadable`, {
      alarmDescription: `The applier's queue held messages that carry no event (deleted): something other than the rule sends to it`,
      namespace: metricNamespace,
      metricName: "QueueMessagesUnreadable" satisfies MetricName,
      dimensions: { service: `simroot-${rule}` },
      statistic: "Sum",
      period: 300,
      comparisonOperator: "GreaterThanThreshold",
      threshold: 0,
    });
    continue;
  }
  alarm(`${rule}EventAge`, {
    alarmDescription: `Events wait more than 5 minutes for consumer ${rule} (retries or throttling)`,
    namespace: "AWS/Lambda",
    metricName: "AsyncEventAge",
    dimensions: { FunctionName: functionName },
    statistic: "Maximum",
    period,
    comparisonOperator: "GreaterThanThreshold",
    threshold: 5 * 60 * 1000,
  });
}

// The applier's queue: reported facts waiting to be applied (ingestion answers 503 past its bound, so depth alone is no fault).
// A message that failed once waits a visibility timeout before it is received again: past two, it is stuck or the
// applier cannot keep up.
const applierAgeSeconds = 2 * applierQueueSettings.visibilityTimeoutSeconds;
alarm("ApplierQueueAge", {
  alarmDescription: `Reported facts wait more than ${applierAgeSeconds / 60} minutes for the applier (${queuedRule}: failing, throttled or at its concurrency)`,
  namespace: "AWS/SQS",
  metricName: "ApproximateAgeOfOldestMessage",
  dimensions: { QueueName: applierQueue.nodes.queue.name },
  statistic: "Maximum",
  period,
  comparisonOperator: "GreaterThanThreshold",
  threshold: applierAgeSeconds,
});

const apiId = api.nodes.api.id;
alarm("Api5xx", {
  alarmDescription: "The API answers 5xx (503s included: a dependency is down)",
  namespace: "AWS/ApiGateway",
  metricName: "5xx",
  dimensions: { ApiId: apiId },
  statistic: "Sum",
  period: 300,
  comparisonOperator: "GreaterThanThreshold",
  threshold: 10,
});
alarm("ApiLatency", {
  alarmDescription: "API p99 latency is near the function timeout",
  namespace: "AWS/ApiGateway",
  metricName: "IntegrationLatency",
  dimensions: { ApiId: apiId },
  extendedStatistic: "p99",
  period: 300,
  comparisonOperator: "GreaterThanThreshold",
  // Long polls wait up to the feed's longest wait by design: alarm beyond it.
  threshold: (timeouts.feedWaitSeconds + 5) * 1000,
});

/** The operations simroot calls on its tables: DynamoDB publishes SystemErrors per table and operation only. */
const tableOperations = [
  "GetItem",
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "Query",
  "BatchGetItem",
  "BatchWriteItem",
  "TransactWriteItems",
  "TransactGetItems",
] as const;
/** A metric-math alarm's query: one DynamoDB metric of a table (and index), summed over the period. */
const dynamoQuery = (id: string, metricName: string, dimensions: Record<string, $util.Input<string>>) => ({
  id,
  returnData: false,
  metric: { namespace: "AWS/DynamoDB", metricName, dimensions, period: 300, stat: "Sum" },
});
for (const [key, table] of Object.entries(dynamoTables) as [TableKey, (typeof dynamoTables)[TableKey]][]) {
  // Throttle events per table and per index: ThrottledRequests is published per table *and operation*, so an alarm on
  // the table alone watched a metric that never has data (review 62).
  const indexes = Object.keys(tableDefinitions[key].indexes);
  const throttles = [undefined, ...indexes].flatMap((index, position) =>
    (["ReadThrottleEvents", "WriteThrottleEvents"] as const).map((metricName) =>
      dynamoQuery(`${metricName === "ReadThrottleEvents" ? "r" : "w"}${position}`, metricName, {
        TableName: table.name,
        ...(index === undefined ? {} : { GlobalSecondaryIndexName: index }),
      }),
    ),
  );
  alarm(`${key}TableThrottles`, {
    alarmDescription: `Table ${key} (or one of its indexes) throttles reads or writes`,
    metricQueries: [...throttles, { id: "throttles", expression: "SUM(METRICS())", label: "throttle events", returnData: true }],
    comparisonOperator: "GreaterThanThreshold",
    threshold: 0,
  });
  alarm(`${key}TableSystemErrors`, {
    alarmDescription: `Table ${key} answers requests with 500s (DynamoDB system errors; the SDK retries them)`,
    metricQueries: [
      ...tableOperations.map((operation, index) =>
        dynamoQuery(`e${index}`, "SystemErrors", { TableName: table.name, Operation: operation }),
      ),
      { id: "errors", expression: "SUM(METRICS())", label: "system errors", returnData: true },
    ],
    comparisonOperator: "GreaterThanThreshold",
    threshold: 5,
  });
}

// Throttled invocations anywhere in the account (Lambda publishes Throttles without dimensions for the whole account):
// a function at its concurrency, or the account at its limit (new accounts start low: see README "Deploying").
alarm("LambdaThrottles", {
  alarmDescription: "Lambda throttles invocations (a function at its concurrency, or the account at its limit)",
  namespace: "AWS/Lambda",
  metricName: "Throttles",
  statistic: "Sum",
  period: 300,
  comparisonOperator: "GreaterThanThreshold",
  threshold: 0,
});

// Functions no other alarm watches: failing, they stop quietly (deliveries and replays, dead letters' listing, PEP push
// logins, and with the IoT integration devices' MQTT logins to IoT Core: `integrations()` ran before this module loads).
for (const [name, functionName] of [
  ["WebhookWorker", webhookWorker.nodes.job.nodes.function.name],
  ["DeadLetterDrain", deadLetterDrain.name],
  ["FeedAuthorizer", feedAuthorizerFunction.name],
  ...(iotAuthorizerFunction ? [["IotAuthorizer", iotAuthorizerFunction.name] as const] : []),
] as const) {
  alarm(`${name}Errors`, {
    alarmDescription: `Function ${name} fails (see its log)`,
    namespace: "AWS/Lambda",
    metricName: "Errors",
    dimensions: { FunctionName: functionName },
    statistic: "Sum",
    period: 300,
    comparisonOperator: "GreaterThanThreshold",
    threshold: 0,
  });
}

// simroot's own metrics (core platform/metrics.ts), printed by every function that records them:
// the alarm is per function (CloudWatch alarms take no SEARCH), the dashboard draws a line per function.
// The functions that commit through the ledger are those that write audit records, but the history: it writes them only
// as the feed's backstop, sequencing what a stopped committer left (the committer records a change's latency, so that
// alarm would have had no data; the backstop's runs are logged as warnings).
const committers = (Object.keys(functions) as FunctionName[]).filter(
  (name) => name !== "history" && (functions[name] as FunctionDefinition).tables.audit?.includes("PutItem"),
);
for (const name of committers) {
  alarm(`${name}FeedLatency`, {
    alarmDescription: `Changes committed by ${name} take more than 2 s at p99 to reach the signed feed (PEPs learn them late)`,
    namespace: metricNamespace,
    metricName: "FeedLatencyMs" satisfies MetricName,
    dimensions: { service: `simroot-${name}` },
    extendedStatistic: "p99",
    period: 300,
    comparisonOperator: "GreaterThanThreshold",
    threshold: 2_000,
  });
}

// The audit archive: what is not archived 15 days before its expiry is at risk (the archiver keeps 30).
alarm("AuditArchiveMargin", {
  alarmDescription:
    "An audit version not archived yet expires within 15 days: the archiver is failing or behind (records expire unarchived)",
  namespace: metricNamespace,
  metricName: "AuditArchiveMarginSeconds" satisfies MetricName,
  dimensions: { service: "simroot-auditArchiver" },
  statistic: "Minimum",
  period: 3_600,
  // Every run prints it (the whole retention when nothing waits): three hours without it, the archiver is not running
  // or fails before it reads the store (review 101: missing data was taken as good, and a failing run printed none).
  treatMissingData: "breaching",
  evaluationPeriods: 3,
  comparisonOperator: "LessThanThreshold",
  threshold: 15 * 86_400,
});
alarm("AuditArchiverErrors", {
  alarmDescription: "The audit archiver failed for a tenant (see its log: the chain does not verify, or the store refused)",
  namespace: "AWS/Lambda",
  metricName: "Errors",
  dimensions: { FunctionName: auditArchiver.nodes.job.nodes.function.name },
  statistic: "Sum",
  period: 3_600,
  comparisonOperator: "GreaterThanThreshold",
  threshold: 0,
});

/** One line of a simroot metric, over every function that prints it. */
const simrootMetric = (name: MetricName, stat: string, id: string) => [
  { expression: `SEARCH('{${metricNamespace},service} MetricName="${name}"', '${stat}', ${period})`, id, label: name },
];

const metric = (namespace: string, name: string, dimensions: Record<string, unknown>, stat = "Sum") => [
  namespace,
  name,
  ...Object.entries(dimensions).flat(),
  { stat },
];

export const dashboard = new aws.cloudwatch.Dashboard("Dashboard", {
  dashboardName: `simroot-${$app.stage}`,
  dashboardBody: $resolve([
    region,
    apiId,
    applierQueue.nodes.queue.name,
    ...ruleNames.map((rule) => subscriptions[rule].deadLetterQueue.nodes.queue.name),
    ...ruleNames.map((rule) => subscriptions[rule].subscriber.apply((s) => s.nodes.function.name)),
  ]).apply(([regionName, id, applierQueueName, ...names]) => {
    const queues = names.slice(0, ruleNames.length);
    const consumers = names.slice(ruleNames.length);
    const widget = (title: string, metrics: unknown[][], y: number, x: number) => ({
      type: "metric",
      x,
      y,
      width: 12,
      height: 6,
      properties: { title, region: regionName, period, view: "timeSeries", metrics },
    });
    return JSON.stringify({
      widgets: [
        widget(
          "Ingest: accepted vs applied",
          [
            simrootMetric("IngestAccepted", "Sum", "accepted"),
            simrootMetric("FactsSettled", "Sum", "settled"),
            simrootMetric("FactsApplied", "Sum", "applied"),
          ],
          0,
          0,
        ),
        widget(
          // Arrivals, not depth: the drain empties each queue into the tenant's list at once (see the alarms above).
          "Dead letters received",
          queues.map((queue) => metric("AWS/SQS", "NumberOfMessagesReceived", { QueueName: queue }, "Sum")),
          0,
          12,
        ),
        widget(
          "Feed: change and revocation to signed feed, p99 (ms)",
          [simrootMetric("FeedLatencyMs", "p99", "feed"), simrootMetric("RevocationLatencyMs", "p99", "revocation")],
          6,
          0,
        ),
        widget(
          "API",
          [
            metric("AWS/ApiGateway", "Count", { ApiId: id }),
            metric("AWS/ApiGateway", "4xx", { ApiId: id }),
            metric("AWS/ApiGateway", "5xx", { ApiId: id }),
          ],
          6,
          12,
        ),
        widget(
          "Consumers: errors and event age",
          consumers.flatMap((name, index) => [
            metric("AWS/Lambda", "Errors", { FunctionName: name }),
            // The applier's queue invokes it, not EventBridge: its age is the queue's oldest message (below).
            ...(ruleNames[index] === queuedRule ? [] : [metric("AWS/Lambda", "AsyncEventAge", { FunctionName: name }, "Maximum")]),
          ]),
          12,
          0,
        ),
        widget(
          "Applier's queue: messages waiting and in flight (ingestion's backlog), failed",
          [
            metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", { QueueName: applierQueueName }, "Maximum"),
            metric("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", { QueueName: applierQueueName }, "Maximum"),
            simrootMetric("QueueMessagesFailed", "Sum", "failed"),
          ],
          12,
          12,
        ),
      ],
    });
  }),
});
