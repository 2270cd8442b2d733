import type { DomainEvent } from "./event/event.ts";
import type { Ports } from "./ports.ts";

/** What a verb returns: its result and the events it caused (published once the write commits). */
export interface Outcome<Value> {
  readonly value: Value;
  readonly events: readonly DomainEvent[];
}

/** Publishes a committed outcome's events and hands back its value: the one dispatch path for every transport. */
export async function publishOutcome<Value>(ports: Ports, outcome: Outcome<Value>): Promise<Value> {
  if (outcome.events.length > 0) await ports.publisher.publish(outcome.events);
  return outcome.value;
}
