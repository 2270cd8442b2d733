/**
 * The applier's queue (core platform/limits.ts `applierQueue`): the target of the rule that carries reported facts (the
 * rule that is `queued`, platform/rules.ts), read by its consumer in batches, and the backlog ingestion bounds
 * (`SIMROOT_APPLIER_QUEUE_URL`, read with `sqs:GetQueueAttributes` by every function that bundles ingestion). A message
 * the consumer fails on each of its receives moves to the rule's dead-letter queue, which is created here for that.
 */
import type { Resource } from "sst";
import { applierQueue as settings, deadLetterQueue } from "../packages/core/src/platform/limits.ts";
import { isQueued, rules, type RuleName } from "../packages/core/src/platform/rules.ts";
import type { Expect } from "./database";

const queued = (Object.keys(rules) as RuleName[]).filter(isQueued);
if (queued.length !== 1) throw new Error(`exactly one rule may target the applier's queue, not ${queued.join(", ") || "none"}`);
/** The rule whose target is the queue. */
export const queuedRule = queued[0]!;

/** How every rule's dead-letter queue is made (core platform/limits.ts `deadLetterQueue`): the drain reads each. */
export const deadLetterQueueArgs = {
  visibilityTimeout: `${deadLetterQueue.visibilityTimeoutSeconds} seconds`,
  transform: { queue: { messageRetentionSeconds: deadLetterQueue.retentionSeconds } },
} as const;

/** The queued rule's dead-letter queue (infra/bus.ts uses it as the rule's, for EventBridge and Lambda alike). */
export const applierDeadLetterQueue = new sst.aws.Queue(
  `${queuedRule.charAt(0).toUpperCase()}${queuedRule.slice(1)}DeadLetterQueue`,
  deadLetterQueueArgs,
);

export const applierQueue = new sst.aws.Queue("ApplierQueue", {
  visibilityTimeout: `${settings.visibilityTimeoutSeconds} seconds`,
  dlq: { queue: applierDeadLetterQueue.arn, retry: settings.maxReceiveCount },
  transform: { queue: { messageRetentionSeconds: settings.retentionSeconds } },
});

/** `SIMROOT_APPLIER_QUEUE_URL`, what core's `applierQueueUrl()` reads. */
export const applierQueueEnvironment = { SIMROOT_APPLIER_QUEUE_URL: applierQueue.url };

/** Fails to typecheck when the committed `sst-env.d.ts` lacks the queue. */
export type ApplierQueueDeclaredInSstEnv = Expect<Resource["ApplierQueue"] extends { url: string; type: "sst.aws.Queue" } ? true : false>;
