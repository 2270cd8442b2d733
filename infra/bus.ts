/**
 * The EventBridge bus and one subscription per event rule of core's `rules`: the same
 * patterns and handler modules the local bus uses, so the cloud and the laptop match the
 * same events to the same consumers.
 *
 * Per rule target: an explicit retry policy (core's `retryPolicy`) and a dead-letter SQS
 * queue, with a queue policy that lets only that rule's EventBridge target send to it.
 */
import { integrationTenants } from "../packages/core/src/config.ts";
import { applierQueue as applierQueueSettings } from "../packages/core/src/platform/limits.ts";
import { deployedPattern, retryPolicy, rules, type EventPattern, type RuleName } from "../packages/core/src/platform/rules.ts";
import type { Resource } from "sst";
import type { Expect } from "./database";
import { applierQueue, applierDeadLetterQueue, deadLetterQueueArgs, queuedRule } from "./applier-queue";
import { bus } from "./event-bus";
import { stage } from "./stage";
import { functionArgs } from "./functions";

export { bus, busEnvironment } from "./event-bus";

/** `deviceTimeline` -> `DeviceTimeline`. */
export type RuleComponentName<R extends RuleName = RuleName> = Capitalize<R>;
/** The dead-letter queue of a rule target, and its `Resource` key in `sst-env.d.ts`. */
export type DeadLetterQueueName<R extends RuleName = RuleName> = `${RuleComponentName<R>}DeadLetterQueue`;

/** Fails to typecheck when the committed `sst-env.d.ts` lacks a rule's queue. */
export type DeadLetterQueuesDeclaredInSstEnv = Expect<
  Resource[DeadLetterQueueName] extends { url: string; type: "sst.aws.Queue" } ? true : false
>;

function ruleComponentName<R extends RuleName>(name: R): RuleComponentName<R> {
  return `${name.charAt(0).toUpperCase()}${name.slice(1)}` as RuleComponentName<R>;
}

type SubscriberPattern = NonNullable<sst.aws.BusSubscriberArgs["pattern"]>;

function arrayField(pattern: EventPattern, field: string): unknown[] | undefined {
  const value = pattern[field];
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new Error(`event pattern field "${field}" must be an array`);
  return [...value];
}

/**
 * The pattern in the form `Bus.subscribe` takes. That form only carries `source`,
 * `detail-type` (as `detailType`) and `detail`; SST rebuilds the EventPattern JSON from it.
 */
function subscriberPattern(pattern: EventPattern): SubscriberPattern {
  const detail = pattern["detail"];
  if (detail !== undefined && (typeof detail !== "object" || detail === null || Array.isArray(detail))) {
    throw new Error('event pattern field "detail" must be an object');
  }
  const source = arrayField(pattern, "source");
  const detailType = arrayField(pattern, "detail-type");
  return {
    ...(source === undefined ? {} : { source }),
    ...(detailType === undefined ? {} : { detailType }),
    ...(detail === undefined ? {} : { detail: { ...(detail as Record<string, unknown>) } }),
  };
}

function subscribeRule<R extends RuleName>(name: R) {
  // The integrations' rules match only their tenant's events (the deploying shell's settings).
  const rule = { ...rules[name], pattern: deployedPattern(name, integrationTenants()) };
  const componentName = ruleComponentName(name);
  const queued = name === queuedRule;

  const deadLetterQueue = queued
    ? applierDeadLetterQueue
    : new sst.aws.Queue(`${componentName}DeadLetterQueue` satisfies DeadLetterQueueName<R>, deadLetterQueueArgs);

  const subscription = {
    pattern: subscriberPattern(rule.pattern),
    transform: {
      // SST's `pattern` only knows source / detail-type / detail: set the rule's
      // EventPattern to the definition's JSON verbatim, so any other field
      // (account, region, resources, ...) reaches EventBridge too.
      rule: { eventPattern: JSON.stringify(rule.pattern) },
      target: {
        retryPolicy: {
          maximumEventAgeInSeconds: retryPolicy.maximumEventAgeSeconds,
          maximumRetryAttempts: retryPolicy.deliveryRetryAttempts,
        },
        deadLetterConfig: { arn: deadLetterQueue.arn },
      },
    },
  };
  // Not the code's: Lambda itself sends a failed invocation to the on-failure destination
  // below with the function's role, so the role may send to its own queue and no other.
  const args = {
    ...functionArgs(name, {}, [{ actions: ["sqs:SendMessage"], resources: [deadLetterQueue.arn] }]),
    // The queued rule's instances are bounded by its queue's mapping instead (below).
    ...(!queued && stage.consumerConcurrency !== undefined ? { concurrency: { reserved: stage.consumerConcurrency } } : {}),
  };

  let subscriber: $util.Output<{ nodes: { function: $util.Output<sst.aws.Function> } }>;
  let ruleArn: $util.Output<string>;
  if (queued) {
    // The rule puts each event in the applier's queue, with a policy of our own that lets that rule send and nothing
    // else (SST's `subscribeQueue` would let any SNS topic, S3 bucket or rule send: their messages would count in the
    // backlog ingestion bounds). Lambda reads it in batches, answering the messages that failed (`partialResponses`),
    // with at most `stage.applierConcurrency` instances at once; the queue moves a message received `maxReceiveCount` times to
    // `deadLetterQueue`.
    const toQueue = new aws.cloudwatch.EventRule(`${componentName}Rule`, {
      eventBusName: bus.name,
      eventPattern: subscription.transform.rule.eventPattern,
    });
    new aws.cloudwatch.EventTarget(`${componentName}Target`, {
      rule: toQueue.name,
      eventBusName: bus.name,
      arn: applierQueue.arn,
      ...subscription.transform.target,
    });
    new aws.sqs.QueuePolicy(`${componentName}QueuePolicy`, {
      queueUrl: applierQueue.url,
      policy: $jsonStringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "TheRuleOnly",
            Effect: "Allow",
            Principal: { Service: "events.amazonaws.com" },
            Action: "sqs:SendMessage",
            Resource: applierQueue.arn,
            Condition: { ArnEquals: { "aws:SourceArn": toQueue.arn } },
          },
        ],
      }),
    });
    ruleArn = toQueue.arn;
    subscriber = applierQueue.subscribe(args, {
      batch: { size: applierQueueSettings.batchSize, partialResponses: true },
      transform: { eventSourceMapping: { scalingConfig: { maximumConcurrency: stage.applierConcurrency } } },
    });
  } else {
    const toFunction = bus.subscribe(componentName, args, subscription);
    ruleArn = toFunction.apply((s) => s.nodes.rule.arn);
    subscriber = toFunction;
  }

  // EventBridge invokes Lambda asynchronously: its retry policy and DLQ cover delivery to
  // Lambda only. A handler that keeps failing after Lambda's own retries lands in the same queue.
  // (The queued rule's consumer is invoked asynchronously only by a redrive.)
  new aws.lambda.FunctionEventInvokeConfig(`${componentName}OnFailure`, {
    functionName: subscriber.apply((s) => s.nodes.function.name),
    maximumRetryAttempts: retryPolicy.handlerAttempts - 1,
    maximumEventAgeInSeconds: retryPolicy.maximumEventAgeSeconds,
    destinationConfig: { onFailure: { destination: deadLetterQueue.arn } },
  });

  new aws.sqs.QueuePolicy(`${componentName}DeadLetterQueuePolicy`, {
    queueUrl: deadLetterQueue.url,
    policy: $jsonStringify({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "EventBridgeDeadLetter",
          Effect: "Allow",
          Principal: { Service: "events.amazonaws.com" },
          Action: "sqs:SendMessage",
          Resource: deadLetterQueue.arn,
          Condition: { ArnEquals: { "aws:SourceArn": ruleArn } },
        },
      ],
    }),
  });

  return { subscriber, deadLetterQueue };
}

const ruleNames = Object.keys(rules) as RuleName[];

/** The subscription and dead-letter queue of every rule, keyed by rule name. */
export const subscriptions = Object.fromEntries(ruleNames.map((name) => [name, subscribeRule(name)])) as Record<
  RuleName,
  ReturnType<typeof subscribeRule>
>;

/** Dead-letter queue URLs by rule name, for the app outputs. */
export const deadLetterQueueUrls = Object.fromEntries(ruleNames.map((name) => [name, subscriptions[name].deadLetterQueue.url])) as Record<
  RuleName,
  $util.Output<string>
>;

/**
 * The drain of every rule's dead-letter queue (`functions/src/dead-letter-drain.ts`): each
 * message becomes an item of the tenant's list at `/v1/bus/dead-letters`, naming the rule of
 * the queue it came from (`SIMROOT_DEAD_LETTER_QUEUES`, queue ARN -> rule).
 */
const deadLetterQueueArns = ruleNames.map((name) => subscriptions[name].deadLetterQueue.arn);
// Not the code's: the event source mapping reads each queue with the function's role.
const drainArgs = functionArgs("deadLetterDrain", {}, [
  { actions: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], resources: deadLetterQueueArns },
]);
export const deadLetterDrain = new sst.aws.Function("DeadLetterDrain", {
  ...drainArgs,
  environment: {
    ...drainArgs.environment,
    SIMROOT_DEAD_LETTER_QUEUES: $util
      .all(deadLetterQueueArns)
      .apply((arns) => JSON.stringify(Object.fromEntries(arns.map((arn, index) => [arn, ruleNames[index]])))),
  },
});
for (const name of ruleNames) {
  subscriptions[name].deadLetterQueue.subscribe(deadLetterDrain.arn, { batch: { size: 10, partialResponses: true } });
}

/** Each rule's consumer function (rule -> function name, `SIMROOT_CONSUMER_FUNCTIONS`): what a redrive invokes. */
export const consumerFunctions = $util
  .all(ruleNames.map((name) => subscriptions[name].subscriber.apply((s) => s.nodes.function.name)))
  .apply((names) => JSON.stringify(Object.fromEntries(names.map((functionName, index) => [ruleNames[index], functionName]))));
export const consumerArns = ruleNames.map((name) => subscriptions[name].subscriber.apply((s) => s.nodes.function.arn));
