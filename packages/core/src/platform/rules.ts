/**
 * The one definition of the event rules: which domain events reach which consumer.
 * `infra/bus.ts` subscribes each rule's handler to the EventBridge bus; the local bus
 * loads the very same handler modules and matches with the very same patterns.
 */
import type { TableKey } from "./tables.ts";

/** An EventBridge event pattern (content filtering syntax). */
export type EventPattern = { readonly [field: string]: unknown };

export interface RuleDefinition {
  readonly pattern: EventPattern;
  /** The consumer module under `functions/src/`, exporting `handler`. */
  readonly handler: string;
  /** The tables the consumer reads or writes (linked in AWS). */
  readonly tables: readonly TableKey[];
  readonly does: string;
}

/** The bus `source` of the changes simroot applied (and publishes for automation). */
export const eventSource = "simroot";
/** The bus `source` of facts operator sources reported, on their way to the applier. */
export const ingestSource = "simroot.ingest";

export const rules = {
  parkedReconciler: {
    does: "replays the parked facts that name a newly registered device, so nothing waits for an operator",
    pattern: { source: [eventSource], "detail-type": ["device.registered"] },
    handler: "consumers/parked-reconciler.ts",
    tables: ["control"],
  },
  operatorEvents: {
    does: "applies the facts operator cores and eSIM managers report to device identity state",
    pattern: { source: [ingestSource] },
    handler: "consumers/operator-events.ts",
    tables: ["identity", "control", "audit"],
  },
  detectors: {
    does: "judges operator changes against the device's baseline (IMEI change, SIM swap, geofence, unexpected bearer) and records anomalies",
    pattern: {
      source: [eventSource],
      "detail-type": ["device.equipment-changed", "device.suspended", "device.quarantined", "device.roaming-changed", "sim.attached", "bearer.switched"],
    },
    handler: "consumers/detectors.ts",
    tables: ["identity", "control", "audit", "flows"],
  },
  profileSwitches: {
    does: "records an anomaly when an eUICC reports enabling a profile because of a device change or a fallback",
    pattern: { source: [ingestSource], "detail-type": ["profile.enabled"], detail: { data: { event: { data: { cause: ["deviceChange", "fallback"] } } } } },
    handler: "consumers/detectors.ts",
    tables: ["identity", "control", "audit", "flows"],
  },
  automation: {
    does: "runs each tenant's automation rules whose pattern matches a change simroot applied (anomalies included)",
    pattern: { source: [eventSource] },
    handler: "consumers/automation.ts",
    tables: ["identity", "control", "audit", "automation", "flows"],
  },
  webhooks: {
    does: "queues a durable delivery for each outbound webhook subscription whose pattern matches, and makes its first attempt",
    pattern: { source: [eventSource] },
    handler: "consumers/webhooks.ts",
    // A 410 disables the subscription through the ledger (control: the tenant's head; audit).
    tables: ["automation", "control", "audit"],
  },
} as const satisfies Record<string, RuleDefinition>;

export type RuleName = keyof typeof rules;

/** Retry policy for every rule target, in AWS and on the local bus. */
export const retryPolicy = { maximumEventAgeSeconds: 24 * 60 * 60, maximumRetryAttempts: 185 } as const;
