import type { DomainEvent } from "./event/event.ts";

/**
 * What a verb returns: its result and the events it committed. The events are published from
 * the committed audit records by the outbox (outbox/outbox.ts), never by the caller: a caller
 * that crashes or whose publish fails after the commit loses nothing.
 */
export interface Outcome<Value> {
  readonly value: Value;
  readonly events: readonly DomainEvent[];
}

/** A committed outcome's value: what every transport answers with (the outbox publishes its events). */
export function outcomeValue<Value>(outcome: Outcome<Value>): Value {
  return outcome.value;
}
