/**
 * The functions' logs and metrics, with Powertools (logger and metrics, one version): JSON log
 * lines that carry the invocation's request id, cold start and service, and the figures of core's
 * `platform/metrics.ts` in CloudWatch's embedded metric format, printed once per invocation
 * (namespace `simroot`, dimension `service` = the function's `POWERTOOLS_SERVICE_NAME`, set by
 * infra). No tracing: Powertools Tracer bundles the X-Ray SDK (~250 KB, past the bundle budget), and
 * Lambda's active tracing is not turned on (a request id in every log line ties one request's lines).
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";
import { metricDefinitions, metricNamespace, type MetricsSink } from "@simroot/core";

export const logger = new Logger();
export const metrics = new Metrics({ namespace: metricNamespace });

/** The ports' metrics: stored until the invocation ends (`publishMetrics`). */
export const metricsSink: MetricsSink = {
  add: (name, value) => metrics.addMetric(name, metricDefinitions[name].unit, value),
};

/** Prints what this invocation recorded as one EMF document; an invocation that recorded nothing prints nothing. */
export function publishMetrics() {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}
