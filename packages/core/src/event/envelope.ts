import { eventSource } from "../platform/rules.ts";
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

/** The PutEvents entry for a domain event (EventBridge builds the envelope from it). */
export function toPutEventsEntry(event: DomainEvent, busName: string) {
  return {
    EventBusName: busName,
    Source: eventSource,
    DetailType: event.type,
    Detail: JSON.stringify(event),
    Time: new Date(event.time),
    Resources: [],
  };
}
