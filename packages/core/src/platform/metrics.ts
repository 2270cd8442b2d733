/**
 * The metrics simroot's code records, what each means, and its unit. In AWS they are printed
 * in CloudWatch's embedded metric format (Powertools Metrics, namespace `simroot`, dimension
 * `service` = the function's `POWERTOOLS_SERVICE_NAME`); `infra/ops.ts` draws the dashboard and
 * the alarms from these names only, so a widget cannot name a metric no code records.
 * Locally nothing collects them (no sink in the ports).
 */
export const metricNamespace = "simroot";

export const metricDefinitions = {
  IngestAccepted: { unit: "Count", means: "operator events /v1/ingest accepted (202): durably queued for the applier" },
  FactsSettled: { unit: "Count", means: "facts the applier settled, whatever the outcome (applied, duplicate, stale, parked)" },
  FactsApplied: { unit: "Count", means: "facts that changed a device" },
  FactsRequeued: {
    unit: "Count",
    means:
      "facts of a packed bus entry, or parked facts a registration applied, that failed and went back on the bus alone, to be retried or dead-lettered as themselves",
  },
  QueueMessagesFailed: {
    unit: "Count",
    means:
      "messages of the applier's queue its consumer answered as failed (an error, or unfinished near the timeout): received again, then dead-lettered",
  },
  QueueMessagesUnreadable: {
    unit: "Count",
    means: "messages of the applier's queue that carry no bus event: logged and deleted, as no retry could apply them",
  },
  FeedLatencyMs: {
    unit: "Milliseconds",
    means: "from a change reaching the ledger to the signed feed version that carries it (what every PEP receives next)",
  },
  RevocationLatencyMs: { unit: "Milliseconds", means: "FeedLatencyMs of the changes that revoke a device" },
  EventsRefused: {
    unit: "Count",
    means:
      "committed events the bus refused for good (over EventBridge's entry size, or malformed): the outbox made each a dead letter (rule `outbox`) and went on; no consumer received them",
  },
  RecordsUnreadable: {
    unit: "Count",
    means:
      "audit records on the stream that do not parse (written by a newer release, or corrupted): the outbox logs each and publishes no event for it (the audit trail keeps the record)",
  },
  AutomationMatchesUnrecorded: {
    unit: "Count",
    means:
      "automation rules' matches past their rate limit and past the records kept of those in a window (10, or the rule's limit if higher): neither acted on nor recorded",
  },
  AuditArchiveMarginSeconds: {
    unit: "Seconds",
    means: "of every tenant, the least time left before an audit version not archived yet expires (the archiver keeps it above 30 days)",
  },
} as const satisfies Record<string, { unit: "Count" | "Milliseconds" | "Seconds"; means: string }>;

export type MetricName = keyof typeof metricDefinitions;

/** Where verbs and the ledger record a metric; entry points that can publish them provide one. */
export interface MetricsSink {
  add(name: MetricName, value: number): void;
}
