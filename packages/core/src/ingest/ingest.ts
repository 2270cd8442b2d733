/**
 * Webhook ingestion: authenticate with the source's credentials, translate with its format
 * adapter, and publish every accepted fact durably before answering. Nothing is recorded
 * for an unauthenticated request; a batch reports per item.
 */
import { SimrootError, type FieldIssue } from "../error.ts";
import type { Ports } from "../ports.ts";
import type { Bearer, NormalizedEvent } from "../catalogue/catalogue.ts";
import type { Adapter, IngestFormat, IngestRequest } from "./adapter.ts";
import { ingestedEvent } from "./ingested.ts";
import { noteIngest } from "./source-health.ts";
import { sourceForIngest } from "./source.ts";

export interface IngestResult {
  readonly sourceId: string;
  readonly accepted: { readonly index: number; readonly id: string; readonly type: string }[];
  readonly rejected: { readonly index: number; readonly errors: readonly FieldIssue[] }[];
}

export async function ingest(
  ports: Ports,
  adapters: Readonly<Record<IngestFormat, Adapter>>,
  sourceId: string,
  request: IngestRequest,
  requestId: string,
): Promise<IngestResult> {
  const { source } = await authenticated(ports, adapters, sourceId, request);
  const adapter = adapters[source.format];
  const items = adapter.parse(request);
  const ctx = { tenantId: source.tenantId, actor: `source:${source.id}`, requestId };
  const now = ports.now();
  const accepted: IngestResult["accepted"] = [];
  const rejected: IngestResult["rejected"] = [];
  const events = [];
  for (const item of items) {
    if (!item.ok) {
      rejected.push({ index: item.index, errors: item.issues });
      continue;
    }
    for (const reported of item.events) {
      const normalized = withDefaultBearer(reported, source.defaultBearer);
      const event = ingestedEvent(ctx, source.id, source.format, normalized, now);
      events.push(event);
      accepted.push({ index: item.index, id: event.id, type: event.type });
    }
  }
  const rejection = rejected[0]?.errors[0];
  noteIngest(ports, source.tenantId, source.id, {
    accepted: accepted.length,
    rejected: rejected.length,
    ...(rejection ? { rejection: `item ${rejected[0]!.index}: ${rejection.path}: ${rejection.message}` } : {}),
  });
  if (accepted.length === 0 && rejected.length > 0) {
    throw new SimrootError("ingest.invalid_body", "input", "No event of the body could be accepted", {
      issues: rejected.flatMap((item) => item.errors.map((issue) => ({ path: `${item.index}.${issue.path}`, message: issue.message }))),
    });
  }
  await ports.publisher.publish(events);
  return { sourceId: source.id, accepted, rejected };
}

/** A private core reports its sessions as cellular: the source says which bearer that really is. */
function withDefaultBearer(event: NormalizedEvent, bearer: Bearer | undefined): NormalizedEvent {
  if (!bearer || !("bearer" in event.data) || event.data.bearer !== "cellular") return event;
  return { ...event, data: { ...event.data, bearer } } as NormalizedEvent;
}

/** Authenticates with the cached credentials, and once more with fresh ones before refusing (they may have rotated). */
async function authenticated(ports: Ports, adapters: Readonly<Record<IngestFormat, Adapter>>, sourceId: string, request: IngestRequest) {
  const cached = await sourceForIngest(ports, sourceId);
  try {
    adapters[cached.source.format].authenticate(request, cached.credentials);
    return cached;
  } catch {
    const fresh = await sourceForIngest(ports, sourceId, true);
    try {
      adapters[fresh.source.format].authenticate(request, fresh.credentials);
    } catch (error) {
      noteIngest(ports, fresh.source.tenantId, fresh.source.id, { accepted: 0, rejected: 0, unauthenticated: true });
      throw error;
    }
    return fresh;
  }
}
