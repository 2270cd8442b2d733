/**
 * The one definition of the event rules: which domain events reach which consumer.
 * `infra/bus.ts` subscribes each rule's handler to the EventBridge bus; the local bus
 * loads the very same handler modules and matches with the very same patterns.
 */
import { consumerResource, eventSource, ingestSource, judgedProfileSwitchCauses } from "./bus-names.ts";

export { consumerResource, eventSource, ingestSource, retryPolicy, type OptInConsumer } from "./bus-names.ts";

/** An EventBridge event pattern (content filtering syntax). */
export type EventPattern = { readonly [field: string]: unknown };

export interface RuleDefinition {
  readonly pattern: EventPattern;
  /** The consumer module under `functions/src/`, exporting `handler`. */
  readonly handler: string;
  readonly does: string;
  /**
   * In AWS the rule's target is the applier's queue (platform/limits.ts `applierQueue`), read by the consumer in
   * batches, not an asynchronous invocation per event: its depth is ingestion's backlog. One rule at most.
   */
  readonly queued?: boolean;
}
// What each consumer may do to which table is declared with the function, in ./functions.ts.

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
  },
  operatorEvents: {
    does: "applies the facts operator cores and eSIM managers report to device identity state",
    pattern: { source: [ingestSource] },
    handler: "consumers/operator-events.ts",
    queued: true,
  },
  detectors: {
    does: "judges operator changes against the device's baseline (IMEI change, SIM swap, geofence, unexpected bearer) and records anomalies",
    pattern: {
      source: [eventSource],
      "detail-type": [
        "device.equipment-changed",
        "device.suspended",
        "device.quarantined",
        "device.roaming-changed",
        "sim.attached",
        "bearer.switched",
      ],
    },
    handler: "consumers/detectors.ts",
  },
  profileSwitches: {
    does: "records an anomaly when an eUICC reports enabling a profile because of a device change or a fallback",
    pattern: {
      source: [ingestSource],
      "detail-type": ["profile.enabled"],
      detail: { data: { event: { data: { cause: [...judgedProfileSwitchCauses] } } } },
    },
    handler: "consumers/detectors.ts",
  },
  automation: {
    does: "runs each tenant's automation rules whose pattern matches a change simroot applied (anomalies included)",
    // Only the changes of tenants with rules: the outbox names the consumer in `resources` (core outbox/interests.ts).
    pattern: { source: [eventSource], resources: [consumerResource("automation")] },
    handler: "consumers/automation.ts",
  },
  webhooks: {
    does: "queues a durable delivery for each outbound webhook subscription whose pattern matches, and makes its first attempt",
    // Only the changes of tenants with subscriptions (as automation's).
    pattern: { source: [eventSource], resources: [consumerResource("webhooks")] },
    handler: "consumers/webhooks.ts",
  },
  iotSync: {
    does: "mirrors each device's SIM identity, state and labels onto its AWS IoT thing, thing groups and certificates",
    pattern: { source: [eventSource], "detail-type": [...deviceChangeTypes] },
    handler: "consumers/iot-sync.ts",
  },
  postureSync: {
    does: "sets each device's simroot state and risk as custom posture attributes of its Tailscale node",
    // Reachability only moves the posture score, not the IoT thing.
    pattern: { source: [eventSource], "detail-type": [...deviceChangeTypes, "device.reachability-changed"] },
    handler: "consumers/posture-sync.ts",
  },
  siemExport: {
    does: "streams every simroot event to the SIEM as an OCSF event",
    pattern: { source: [eventSource] },
    handler: "consumers/siem-export.ts",
  },
} as const satisfies Record<string, RuleDefinition>;

/** Whether the rule's target in AWS is the applier's queue (`queued`). */
export const isQueued = (name: RuleName): boolean => (rules[name] as RuleDefinition).queued === true;

export type RuleName = keyof typeof rules;

/** The consumers that serve one tenant's integration (core config's `integrationTenants`). */
const integrationRules = ["iotSync", "postureSync", "siemExport"] as const satisfies readonly RuleName[];
export type IntegrationRule = (typeof integrationRules)[number];
const isIntegrationRule = (name: RuleName): name is IntegrationRule => (integrationRules as readonly RuleName[]).includes(name);

/**
 * A rule's pattern as deployed: an integration's consumer serves one tenant, so its rule matches
 * only that tenant's events, and none while the integration is off (`exists: false` on a field
 * every event carries). Each event a rule matches is a Lambda invocation, billed whether the
 * consumer has anything to do or not: matched by every rule, an applied change invoked the SIEM
 * export even in a deployment with no SIEM. Infra deploys this pattern; the local bus matches it
 * with the settings of the moment (they are the deploying shell's in AWS, fixed until the next deploy).
 */
export function deployedPattern(name: RuleName, tenants: Readonly<Partial<Record<IntegrationRule, string>>>): EventPattern {
  const pattern: EventPattern = rules[name].pattern;
  if (!isIntegrationRule(name)) return pattern;
  const tenant = tenants[name];
  const detail = (pattern.detail ?? {}) as Record<string, unknown>;
  return { ...pattern, detail: { ...detail, tenantId: tenant ? [tenant] : [{ exists: false }] } };
}
