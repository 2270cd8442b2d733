import { newId } from "../id.ts";
import type { RequestContext } from "../context.ts";

/**
 * A domain event: what a verb caused, in past tense and dotted (`device.registered`).
 * Verbs return these; adapters publish them after the write commits.
 */
export interface DomainEvent<Type extends string = string, Data = Record<string, unknown>> {
  readonly id: string;
  readonly type: Type;
  readonly tenantId: string;
  /** The id of the thing the event is about (a device id, a policy id, ...). */
  readonly subject: string;
  readonly time: string;
  readonly actor: string;
  readonly requestId: string;
  readonly data: Data;
  /** `ingest`: a fact reported by an operator source, not yet applied (bus source `simroot.ingest`). */
  readonly origin?: "ingest";
}

export function domainEvent<Type extends string, Data>(
  ctx: RequestContext,
  type: Type,
  subject: string,
  data: Data,
  time: Date,
): DomainEvent<Type, Data> {
  return {
    id: newId("event", time.getTime()),
    type,
    tenantId: ctx.tenantId,
    subject,
    time: time.toISOString(),
    actor: ctx.actor,
    requestId: ctx.requestId,
    data,
  };
}

/** The port every event leaves through: EventBridge in AWS, the durable local bus on a laptop. */
export interface PublishOptions {
  /** Each event's envelope `resources`: the opt-in consumers with work for its tenant (outbox/interests.ts). */
  readonly resources?: (event: DomainEvent) => readonly string[];
  /** Each event a bus entry of its own: reported facts of one request are not packed (core ingest/reported.ts). */
  readonly alone?: boolean;
}

export interface Publisher {
  /** Resolves only once every event is durably accepted by the bus. */
  publish(events: readonly DomainEvent[], options?: PublishOptions): Promise<void>;
}
