/**
 * Backpressure for ingestion. Operator cores can post far faster than the applier commits
 * (measured: 1,676 accepted events/s against ~250 applied/s); without a bound the backlog
 * and the memory holding it grow until something falls over. The backlog is a port: the
 * local bus's pending deliveries, the depth of the applier's queue in AWS. Past the bound,
 * ingestion answers 503 with Retry-After and records nothing; the sender retries later.
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import { ingestMaxBacklog } from "../config.ts";
import { SimrootError } from "../error.ts";
import type { Ports } from "../ports.ts";
import { lazy, sdkClientSettings } from "../store/sdk-settings.ts";

export interface Backlog {
  /** Deliveries accepted and not yet applied. */
  pending(): Promise<number>;
  /** Past this many, ingestion refuses more (default `SIMROOT_INGEST_MAX_BACKLOG`, 10,000). */
  readonly bound: number;
}

/** One webhook carries at most this many events (a 1 MiB body could carry 5,128). */
export const maxEventsPerRequest = 1000;

/** The 413 of a request carrying more than `maxEventsPerRequest` events, or listing more items (`what`) than that. */
export function tooManyEvents(count: number, what = "events"): SimrootError {
  return new SimrootError(
    "ingest.too_many_events",
    "input",
    `A request carries at most ${maxEventsPerRequest} ${what} (this one ${count}): split it`,
    {
      detail: { status: 413 },
    },
  );
}

/** Refuses a request of `events` events when it would take the backlog past its bound. */
export async function admitIngest(ports: Ports, events: number): Promise<void> {
  if (events > maxEventsPerRequest) throw tooManyEvents(events);
  if (!ports.backlog) return;
  const { bound } = ports.backlog;
  const pending = await ports.backlog.pending();
  // A request larger than the bound is taken when nothing waits: refused, it could never pass however long its sender waited.
  if (pending === 0 || pending + events <= bound) return;
  // Longer the further past the bound, from 1 s to a minute.
  const retryAfter = Math.min(60, Math.max(1, Math.ceil((5 * pending) / bound)));
  throw new SimrootError(
    "ingest.backlogged",
    "unavailable",
    `${pending} events wait to be applied (bound ${bound}): retry in ${retryAfter} s`,
    {
      detail: { status: 503, retryAfter },
    },
  );
}

/**
 * The depth of the applier's SQS queue (visible and in flight), read at most once per
 * `cacheMs` per instance however many webhooks arrive. SQS reports these attributes
 * approximately, about a minute behind at worst: the bound holds within that.
 */
export function sqsBacklog(queueUrl: string, options: { client?: SQSClient; bound?: number; cacheMs?: number } = {}): Backlog {
  const cacheMs = options.cacheMs ?? 1000;
  // The client's package is loaded on the first read, not at module init (`lazy`).
  const sqs = lazy(async () => {
    const { GetQueueAttributesCommand, SQSClient } = await import("@aws-sdk/client-sqs");
    return { client: options.client ?? new SQSClient(sdkClientSettings()), GetQueueAttributesCommand };
  });
  let cached: { until: number; depth: Promise<number> } | undefined;
  const read = async () => {
    const { client, GetQueueAttributesCommand } = await sqs();
    const { Attributes = {} } = await client.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    return Number(Attributes.ApproximateNumberOfMessages ?? 0) + Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0);
  };
  return {
    bound: options.bound ?? ingestMaxBacklog(),
    pending() {
      if (cached && cached.until > Date.now()) return cached.depth;
      const depth = read();
      const entry = { until: Number.POSITIVE_INFINITY, depth };
      cached = entry;
      depth.then(
        () => (entry.until = Date.now() + cacheMs),
        () => cached === entry && (cached = undefined),
      );
      return depth;
    },
  };
}
