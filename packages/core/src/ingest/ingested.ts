import type { DeviceRef, NormalizedEvent } from "../catalogue/catalogue.ts";
import type { RequestContext } from "../context.ts";
import { domainEvent, type DomainEvent } from "../event/event.ts";
import type { IngestFormat } from "./adapter.ts";

/** The detail of a reported fact on the bus (`simroot.ingest`): which source said what. */
export type IngestedDetail = {
  readonly sourceId: string;
  readonly format: IngestFormat;
  readonly event: NormalizedEvent;
};

export type IngestedEvent = DomainEvent<NormalizedEvent["type"], IngestedDetail>;

/** A readable subject for a fact whose device is not resolved yet: `imsi:234...`. */
export function describeRef(ref: DeviceRef): string {
  const [kind, value] = Object.entries(ref).find(([, field]) => field !== undefined) ?? ["unknown", ""];
  return `${kind}:${value}`;
}

export function ingestedEvent(
  ctx: RequestContext,
  sourceId: string,
  format: IngestFormat,
  event: NormalizedEvent,
  now: Date,
): IngestedEvent {
  return { ...domainEvent(ctx, event.type, describeRef(event.device), { sourceId, format, event }, now), origin: "ingest" };
}
