import { eventSource, ingestSource } from "../platform/bus-names.ts";
import type { DomainEvent } from "./event.ts";

/** The EventBridge envelope a consumer receives, identical in AWS and on the local bus. */
export interface BusEnvelope<Event extends DomainEvent = DomainEvent> {
  readonly version: "0";
  readonly id: string;
  readonly "detail-type": Event["type"];
  readonly source: string;
  readonly account: string;
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: Event;
}

/** The bus `source` of an event: applied changes are `simroot`, reported facts `simroot.ingest`. */
export const busSourceOf = (event: DomainEvent) => (event.origin === "ingest" ? ingestSource : eventSource);

/** The PutEvents entry for a domain event (EventBridge builds the envelope from it). */
export function toPutEventsEntry(event: DomainEvent, busName: string, resources: readonly string[] = []) {
  return {
    EventBusName: busName,
    Source: busSourceOf(event),
    DetailType: event.type,
    Detail: JSON.stringify(event),
    Time: new Date(event.time),
    Resources: [...resources],
  };
}
