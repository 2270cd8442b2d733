export * from "./error.ts";
export * from "./id.ts";
export * from "./config.ts";
export * from "./context.ts";
export * from "./ports.ts";
export * from "./outcome.ts";
export * from "./page.ts";
export * from "./verb.ts";
export * from "./runtime.ts";
export * from "./event/event.ts";
export * from "./event/envelope.ts";
export * from "./event/eventbridge-publisher.ts";
export * from "./store/dynamo.ts";
export * from "./store/create-tables.ts";
export * from "./store/transaction.ts";
export * from "./store/health.ts";
export * from "./store/sdk-settings.ts";
export { timeouts, bundling } from "./platform/limits.ts";
export { metricDefinitions, metricNamespace, type MetricName, type MetricsSink } from "./platform/metrics.ts";
export * from "./audit/audit.ts";
export * from "./audit/checkpoint.ts";
export * from "./audit/archive.ts";
export * from "./audit/archive-stores.ts";
export * from "./ledger/chain.ts";
export * from "./ledger/change.ts";
export * from "./ledger/ledger.ts";
export * from "./ledger/audit-record.ts";
export * from "./ledger/shard.ts";
export * from "./ledger/feed-version.ts";
export * from "./catalogue/catalogue.ts";
export * from "./catalogue/asyncapi.ts";
export * from "./ingest/adapter.ts";
export * from "./ingest/ingested.ts";
export * from "./ingest/parked.ts";
export * from "./ingest/source.ts";
export * from "./ingest/ingest.ts";
export * from "./ingest/apply-operator-event.ts";
export * from "./ingest/reported.ts";
export * from "./identity/identity-state.ts";
export * from "./identity/fact.ts";
export * from "./identity/fold.ts";
export * from "./identity/diff.ts";
export * from "./identity/apply-fact.ts";
export { leaseHolder } from "./identity/lease.ts";
export * from "./device/store.ts";
export * from "./access/tenant-settings.ts";
export * from "./access/api-key.ts";
export * from "./access/tenant.ts";
export * from "./device/identifiers.ts";
export * from "./device/device.ts";
export * from "./device/register.ts";
export * from "./device/read.ts";
export * from "./ingest/reconcile.ts";
export { tables, tableKeys, type TableKey, type TableDefinition } from "./platform/tables.ts";
export {
  rules,
  eventSource,
  retryPolicy,
  isQueued,
  deployedPattern,
  consumerResource,
  type OptInConsumer,
  type RuleName,
  type IntegrationRule,
  type RuleDefinition,
  type EventPattern,
} from "./platform/rules.ts";
export * from "./device/actions.ts";
export * from "./policy/model.ts";
export * from "./policy/compile.ts";
export { decideOrFail, failDecision } from "./policy/evaluate.ts";
export * from "./access/keys.ts";
export * from "./access/event-readers.ts";
export * from "./device/update.ts";
export * from "./store/idempotency.ts";
export * from "./policy/store.ts";
export * from "./policy/grant-store.ts";
export * from "./policy/enforcement-store.ts";
export * from "./policy/load.ts";
export * from "./policy/what-if.ts";
export * from "./device/credential.ts";
export * from "./feed/wire.ts";
export * from "./feed/signer.ts";
export * from "./feed/kms-signer.ts";
export * from "./secrets/sealer.ts";
export * from "./event/dead-letter-record.ts";
export * from "./event/dead-letters.ts";
export * from "./event/lambda-redeliver.ts";
export * from "./feed/feed.ts";
export * from "./feed/epoch.ts";
export * from "./feed/scope.ts";
export { headVersion, publishCommits } from "./feed/watch.ts";
export * from "./feed/flows.ts";
export * from "./feed/notifier.ts";
export * from "./feed/iot-notifier.ts";
export * from "./feed/subscriber-authorizer.ts";
export * from "./ingest/backlog.ts";
export { matchesPattern, validatePattern } from "./event/pattern.ts";
export * from "./anomaly/model.ts";
export * from "./anomaly/baseline.ts";
export * from "./anomaly/detect-flows.ts";
export * from "./anomaly/detect-facts.ts";
export * from "./anomaly/detect.ts";
export * from "./anomaly/record.ts";
export * from "./anomaly/baseline-store.ts";
export * from "./automation/rule.ts";
export * from "./automation/run.ts";
export { takeRate } from "./automation/rate-limit.ts";
export * from "./webhook/sign.ts";
export * from "./webhook/subscription.ts";
export * from "./webhook/delivery.ts";
export * from "./webhook/target.ts";
export * from "./incident/incident.ts";
export * from "./incident/report.ts";
export * from "./catalogue/simroot-events.ts";
export * from "./integration/delivery.ts";
export * from "./integration/iot/iot-port.ts";
export * from "./integration/iot/iot-client.ts";
export * from "./integration/iot/iot-attributes.ts";
export * from "./integration/iot/iot-groups.ts";
export * from "./integration/iot/iot-sync.ts";
export * from "./integration/posture/posture.ts";
export * from "./integration/posture/tailscale.ts";
export * from "./integration/posture/cloudflare.ts";
export * from "./integration/ocsf/ocsf-map.ts";
export * from "./integration/ocsf/ocsf-export.ts";
export * from "./integration/ocsf/ocsf-siem.ts";
export * from "./integration/iot/iot-authorizer.ts";
export * from "./traffic/graph.ts";
export * from "./traffic/preview.ts";
export * from "./ingest/source-health.ts";
export * from "./outbox/outbox.ts";
export {
  catchUpFeed,
  catchUpFromStream,
  catchUpGraceMs,
  earliestInStream,
  type CatchUpOptions,
  type CatchUpResult,
} from "./ledger/catch-up.ts";
export * from "./outbox/reproject.ts";
export * from "./outbox/republish.ts";
export * from "./outbox/interests.ts";
export { snapshotReplaySeconds } from "./feed/snapshot-replay.ts";
export * from "./access/rate-limit.ts";
export * from "./access/auth-failures.ts";
