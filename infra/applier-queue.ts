/**
 * The applier's queue (core platform/limits.ts `applierQueue`): the target of the rule that carries reported facts (the
 * rule that is `queued`, platform/rules.ts), read by its consumer in batches, and the backlog ingestion bounds
 * (`SIMROOT_APPLIER_QUEUE_URL`, read with `sqs:GetQueueAttributes` by every function that bundles ingestion). A message
 * the consumer fails on each of its receives moves to the rule's dead-letter queue, which is created here for that.
 */
import type { Resource } from "sst";
import { applierQueue as settings } from "../packages/core/src/platform/limits.ts";
import { isQueued, rules, type RuleName } from "../packages/core/src/platform/rules.ts";
import type { Expect } from "./database";

const queued = (Object.keys(rules) as RuleName[]).filter(isQueued);
if (queued.length !== 1) throw new Error(`exactly one rule may target the applier's queue, not ${queued.join(", ") || "none"}`);
/** The rule whose target is the queue. */
export const queuedRule = queued[0]!;

/** The queued rule's dead-letter queue (infra/bus.ts uses it as the rule's, for EventBridge and Lambda alike). */
export const applierDeadLetterQueue = new sst.aws.Queue(`${queuedRule.charAt(0).toUpperCase()}${queuedRule.slice(1)}DeadLetterQueue`, {
  transform: {
    // Keep failed events as long as SQS allows (the default is 4 days).
    queue: { messageRetentionSeconds: 14 * 24 * 60 * 60 },
  },
});

export const applierQueue = new sst.aws.Queue("ApplierQueue", {
  visibilityTimeout: `${settings.visibilityTimeoutSeconds} seconds`,
  dlq: { queue: applierDeadLetterQueue.arn, retry: settings.maxReceiveCount },
  transform: { queue: { messageRetentionSeconds: settings.retentionSeconds } },
});

/** `SIMROOT_APPLIER_QUEUE_URL`, what core's `applierQueueUrl()` reads. */
export const applierQueueEnvironment = { SIMROOT_APPLIER_QUEUE_URL: applierQueue.url };

/** Fails to typecheck when the committed `sst-env.d.ts` lacks the queue. */
export type ApplierQueueDeclaredInSstEnv = Expect<Resource["ApplierQueue"] extends { url: string; type: "sst.aws.Queue" } ? true : false>;
