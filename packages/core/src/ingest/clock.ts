/**
 * Bounded clocks: a sender's clock may run ahead (skew, a wrong time zone, 9999-12-31). The
 * fold orders facts by the time the sender states, so a fact dated beyond the allowed skew
 * into the future would outrank everything reported after it. Such a fact is clamped to
 * the time simroot received it, and keeps what the sender said in `reportedAt`.
 */
import type { NormalizedEvent } from "../catalogue/catalogue.ts";

/** Standard Webhooks' timestamp tolerance: the default bound on a sender's clock. */
export const defaultMaxClockSkewSeconds = 300;

export function boundedEvent(event: NormalizedEvent, receivedAt: Date, maxSkewSeconds = defaultMaxClockSkewSeconds): NormalizedEvent {
  // `reportedAt` is simroot's to say: one a `simroot` sender put in its event was answered as `clampedFrom` and audited
  // beside a `clampedTo`, though nothing was clamped (review 83).
  const { reportedAt: _stated, ...reported } = event;
  const stated = Date.parse(event.occurredAt);
  if (!(stated > receivedAt.getTime() + maxSkewSeconds * 1000)) return reported as NormalizedEvent;
  return { ...reported, occurredAt: receivedAt.toISOString(), reportedAt: event.occurredAt } as NormalizedEvent;
}
