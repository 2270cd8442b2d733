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

/** The events after which a device's state, identity or labels may differ in other products. */
export const deviceChangeTypes = [
  "device.registered",
  "device.updated",
  "device.suspended",
  "device.quarantined",
  "device.reinstated",
  "device.revoked",
  "device.equipment-changed",
  "device.roaming-changed",
  "profile.enabled",
  "profile.disabled",
  "profile.deleted",
] as const;

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
  iotSync: {
    does: "mirrors each device's SIM identity, state and labels onto its AWS IoT thing, thing groups and certificates",
    pattern: { source: [eventSource], "detail-type": [...deviceChangeTypes] },
    handler: "consumers/iot-sync.ts",
    tables: ["identity", "control", "audit"],
  },
  postureSync: {
    does: "sets each device's simroot state and risk as custom posture attributes of its Tailscale node",
    // Reachability only moves the posture score, not the IoT thing.
    pattern: { source: [eventSource], "detail-type": [...deviceChangeTypes, "device.reachability-changed"] },
    handler: "consumers/posture-sync.ts",
    tables: ["identity", "control", "audit"],
  },
  siemExport: {
    does: "streams every simroot event to the SIEM as an OCSF event",
    pattern: { source: [eventSource] },
    handler: "consumers/siem-export.ts",
    tables: [],
  },
} as const satisfies Record<string, RuleDefinition>;

export type RuleName = keyof typeof rules;

/** Retry policy for every rule target, in AWS and on the local bus. */
export const retryPolicy = { maximumEventAgeSeconds: 24 * 60 * 60, maximumRetryAttempts: 185 } as const;
