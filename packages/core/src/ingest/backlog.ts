/**
 * Backpressure for ingestion. Operator cores can post far faster than the applier commits
 * (measured: 1,676 accepted events/s against ~250 applied/s); without a bound the backlog
 * and the memory holding it grow until something falls over. The backlog is a port: the
 * local bus's pending deliveries, the depth of the applier's queue in AWS. Past the bound,
 * ingestion answers 503 with Retry-After and records nothing; the sender retries later.
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import { eventCounts } from "../access/rate-limit.ts";
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

/**
 * A tenant's share of the bound (review 108): the backlog is one for every tenant, and one tenant posting within its
 * sources' rate limits could fill it, after which every tenant's operator events were refused. Past half the bound, a
 * tenant whose events admitted in the current `shareWindowSeconds` (every instance's, counted in the store as rate limits
 * are) would pass a quarter of the bound is refused, while the others are still taken up to the bound. Counted only
 * while the backlog is past a quarter of its bound, so a deployment that keeps up writes nothing more. Work-conserving: a
 * tenant alone is refused only above half the bound, and each window admits its share again.
 */
export const tenantShare = { countedPast: 0.25, congestedPast: 0.5, ofBound: 0.25, windowSeconds: 10 } as const;

function backlogged(message: string, retryAfter: number): SimrootError {
  return new SimrootError("ingest.backlogged", "unavailable", `${message}: retry in ${retryAfter} s`, {
    detail: { status: 503, retryAfter },
  });
}

/**
 * Refuses a request of `events` events when it would take the backlog past its bound, or, past half of it, when its
 * tenant would pass its share (`tenantShare`).
 */
export async function admitIngest(ports: Ports, events: number, tenantId?: string): Promise<void> {
  if (events > maxEventsPerRequest) throw tooManyEvents(events);
  if (!ports.backlog) return;
  const { bound } = ports.backlog;
  const pending = await ports.backlog.pending();
  // A request larger than the bound is taken when nothing waits: refused, it could never pass however long its sender waited.
  if (pending === 0) return;
  // Longer the further past the bound, from 1 s to a minute.
  const retryAfter = Math.min(60, Math.max(1, Math.ceil((5 * pending) / bound)));
  if (pending + events > bound) throw backlogged(`${pending} events wait to be applied (bound ${bound})`, retryAfter);
  if (tenantId === undefined || pending + events <= bound * tenantShare.countedPast) return;
  const scope = `ingest-share:${tenantId}`;
  const share = { limit: Math.max(1, Math.floor(bound * tenantShare.ofBound)), windowSeconds: tenantShare.windowSeconds };
  if (pending + events > bound * tenantShare.congestedPast) {
    // The count is a measure, not a record: a store that cannot answer it leaves the decision to what this instance knows.
    const sent = await eventCounts.total(ports, scope, share).catch(() => eventCounts.known(ports, scope, share));
    if (sent + events > share.limit) {
      const windowMs = share.windowSeconds * 1000;
      const reset = Math.max(1, Math.ceil((windowMs - (ports.now().getTime() % windowMs)) / 1000));
      throw backlogged(
        `${pending} events wait to be applied (bound ${bound}): with more than half the bound waiting, this tenant's ` +
          `${sent} events of the current ${share.windowSeconds} s and these ${events} would pass its share of ${share.limit}`,
        Math.max(retryAfter, reset),
      );
    }
  }
  // Not written now (the store refused the flush): kept in this instance's count and sent with its next flush.
  await eventCounts.add(ports, scope, share, events).catch(() => undefined);
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
