/**
 * The bus's names and retry semantics that code running in every function needs, apart from the rules' definitions
 * (platform/rules.ts), which only infra and the local runtime read: a function importing these does not carry those
 * (about 2 KB of each bundle).
 */
/** The bus `source` of the changes simroot applied (and publishes for automation). */
export const eventSource = "simroot";
/** The bus `source` of facts operator sources reported, on their way to the applier. */
export const ingestSource = "simroot.ingest";

/**
 * The causes of an eUICC's profile switch that the detectors judge (the `profileSwitches` rule, on reported facts): a
 * fact with one of them travels the bus alone, never packed with its request's others (core ingest/reported.ts).
 */
export const judgedProfileSwitchCauses = ["deviceChange", "fallback"] as const;

/** The consumers a tenant opts into (a webhook subscription, an automation rule): the outbox names them per event. */
export type OptInConsumer = "webhooks" | "automation";

/** The envelope `resources` entry that routes an event to an opt-in consumer (core outbox/interests.ts writes it). */
export const consumerResource = (consumer: OptInConsumer) => `simroot:consumer/${consumer}`;

/**
 * Retries of every rule, the same in AWS and on the local bus. In AWS a consumer is invoked
 * asynchronously, so a handler that fails is retried by Lambda (at most 2 retries, about 1 and
 * 2 minutes apart), not by EventBridge: EventBridge's own retries (up to 185 within the event
 * age) only cover getting the event to Lambda (throttling, Lambda unavailable). Either way an
 * event older than `maximumEventAgeSeconds` or out of attempts lands in the rule's dead-letter
 * queue. The local bus runs a handler `handlerAttempts` times within the same age, then
 * dead-letters it.
 */
export const retryPolicy = {
  /** A failing handler runs this often in all: Lambda's first attempt plus its 2 retries. */
  handlerAttempts: 3,
  /** Retries of the delivery to the function (EventBridge's target retry policy). */
  deliveryRetryAttempts: 185,
  /** The age after which an event is dead-lettered rather than retried: Lambda's and EventBridge's. */
  maximumEventAgeSeconds: 6 * 60 * 60,
} as const;
