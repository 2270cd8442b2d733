/**
 * The cost model's inputs, in one file, so they can be updated when the write path changes.
 * `measured`: per applied operator event, from `npm run cost -- --measure` (bench/cost/measure.ts,
 * the local runtime with ReturnConsumedCapacity on every DynamoDB call). `assumed`: what no bench
 * here can measure (Lambda durations in AWS, record sizes, fleet shape); each says why it is what it is.
 */
import { auditRetentionDays } from "../../packages/core/src/config.ts";

export const measured = {
  /** Date and command of the measurement these figures come from. */
  source: "2026-12-02, EVENTS=200 DEVICES=50 npm run cost -- --measure (before 9A's sharded ledger)",
  perAppliedEvent: {
    /**
     * DynamoDB write request units (transactions count 2 per item). In that run 9% of facts changed
     * a device's state (one transaction of ~13 units each); every fact also pays 1 unit for an
     * unconditional DeleteItem of its parked copy (there is none in the common case).
     */
    writeUnits: 2.15,
    readUnits: 0.5,
    /** EventBridge PutEvents entries: the ingested fact, and the applied change. */
    busEvents: 2,
    /** Consumer invocations (rule matches): the applier. */
    consumerInvocations: 1,
    /** API requests: webhooks carry 10 facts each. */
    apiRequests: 0.1,
  },
  /** Write units of a fact that changes state: its transaction (~13) and the parked delete (1). */
  stateChangeWriteUnits: 14,
} as const;

/** 9A reports about 8 write units per applied (state-changing) operator event after the sharded ledger and outbox. */
export const afterWritePathRewrite = { stateChangeWriteUnits: 8 } as const;

export const assumed = {
  /** Billed duration of a consumer invocation (one fact: a few DynamoDB calls at ~5 ms each). */
  consumerMs: 60,
  /** Billed duration of an API request that is not a feed long poll. */
  apiMs: 50,
  /** Memory of every function (platform `functions`), GB. */
  memoryGb: 1,
  /** Bytes stored per applied event: its audit record and feed entry (the device item is overwritten). */
  storedBytesPerEvent: 800,
  /** Days audit records stay in DynamoDB before their TTL (archived to S3 first): the deployment's setting. */
  auditRetentionDays: auditRetentionDays(),
  /** Devices behind one enforcement point (PEP), which polls the feed. */
  devicesPerPep: 1_000,
  /** Devices per tenant (one signed feed head per tenant per second at most: herd sharing). */
  devicesPerTenant: 100_000,
  /** CloudWatch log bytes per applied event (one request line, one consumer line). */
  logBytesPerEvent: 400,
} as const;
