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
 * tenant is refused when its events published in the last `windowSeconds` would pass a quarter of the bound; the others
 * are still taken up to the bound. The last minute is estimated as rate limiters do with fixed windows: the current
 * window's count and the previous one's, weighted by how much of it the last minute still covers (a window's edge gave
 * a tenant two shares within a second). Counted in the store across instances as rate limits are, after the events
 * are published (a redelivered webhook, answered from its first delivery, counts nothing), and only while more than a
 * quarter of the bound waits, so a deployment that keeps up writes nothing more.
 *
 * What it bounds is a tenant's rate while the backlog is long, not its part of it (no instance can see whose events
 * wait in the queue): one tenant alone cannot take the backlog past half its bound while the applier drains at least a
 * quarter of the bound a minute (42 events a second at the default bound of 10,000; the applier drains hundreds). Below
 * that rate it can, over minutes.
 */
export const tenantShare = { countedPast: 0.25, congestedPast: 0.5, ofBound: 0.25, windowSeconds: 60 } as const;

function backlogged(message: string, retryAfter: number): SimrootError {
  return new SimrootError("ingest.backlogged", "unavailable", `${message}: retry in ${retryAfter} s`, {
    detail: { status: 503, retryAfter },
  });
}

/** What an admitted request does once its events are published: counts them in its tenant's share, when that is counted. */
export interface IngestAdmission {
  published(): Promise<void>;
}
const nothingToCount: IngestAdmission = { published: () => Promise.resolve() };

/**
 * Refuses a request of `events` events when it would take the backlog past its bound, or, past half of it, when its
 * tenant would pass its share (`tenantShare`). The caller calls `published()` once the events are on the bus.
 */
export async function admitIngest(ports: Ports, events: number, tenantId?: string): Promise<IngestAdmission> {
  if (events > maxEventsPerRequest) throw tooManyEvents(events);
  if (!ports.backlog) return nothingToCount;
  const { bound } = ports.backlog;
  const pending = await ports.backlog.pending();
  // A request larger than the bound is taken when nothing waits: refused, it could never pass however long its sender waited.
  if (pending === 0) return nothingToCount;
  // Longer the further past the bound, from 1 s to a minute.
  const retryAfter = Math.min(60, Math.max(1, Math.ceil((5 * pending) / bound)));
  if (pending + events > bound) throw backlogged(`${pending} events wait to be applied (bound ${bound})`, retryAfter);
  if (tenantId === undefined || pending + events <= bound * tenantShare.countedPast) return nothingToCount;
  const scope = `ingest-share:${tenantId}`;
  const share = { limit: Math.max(1, Math.floor(bound * tenantShare.ofBound)), windowSeconds: tenantShare.windowSeconds };
  if (pending + events > bound * tenantShare.congestedPast) {
    // The counts are a measure, not a record: a store that cannot answer leaves the decision to what this instance knows.
    const count = (before: number) =>
      eventCounts.total(ports, scope, share, before).catch(() => eventCounts.known(ports, scope, share, before));
    const [current, previous] = await Promise.all([count(0), count(1)]);
    const windowMs = share.windowSeconds * 1000;
    const into = (ports.now().getTime() % windowMs) / windowMs;
    const sent = Math.ceil(current + previous * (1 - into));
    const over = sent + events - share.limit;
    if (over > 0) {
      // When enough leaves the last minute: the previous window's events leave it through the rest of this window,
      // then this window's through the next (review 155: waiting for this window's end was not always enough).
      const leavingNow = previous * (1 - into);
      const falls =
        over <= leavingNow
          ? (over / previous) * share.windowSeconds
          : (1 - into + (over - leavingNow) / Math.max(current, 1)) * share.windowSeconds;
      throw backlogged(
        `${pending} events wait to be applied (bound ${bound}): with more than half the bound waiting, this tenant's ` +
          `${sent} events of the last ${share.windowSeconds} s and these ${events} would pass its share of ${share.limit}`,
        Math.max(retryAfter, Math.min(2 * share.windowSeconds, Math.ceil(falls))),
      );
    }
  }
  return {
    // Not written now (the store refused the flush): kept in this instance's count and sent with its next flush.
    published: () => eventCounts.add(ports, scope, share, events).catch(() => undefined),
  };
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
