import type { EventBridgeClient, PutEventsCommand, PutEventsCommandOutput } from "@aws-sdk/client-eventbridge";
import { SimrootError } from "../error.ts";
import type { DomainEvent, Publisher } from "./event.ts";
import { toPutEventsEntry } from "./envelope.ts";
import { lazy, sdkClientSettings } from "../store/sdk-settings.ts";
import { packReported, type ReportedFacts } from "../ingest/reported.ts";

/** PutEvents takes at most 10 entries and 256 KB a call. */
const batchSize = 10;
const batchBytes = 250 * 1024;
const attempts = 4;

/**
 * EventBridge's documented bound on an entry, counted as it counts (`entryBytes`): its guide says 256 KB, and AWS
 * announced 1 MB for existing buses in 2026. An entry past it is sent alone (review 74: refused here unsent, it was lost
 * to consumers though the bus would take it), and a request of that one entry refused as invalid is its refusal.
 */
export const maxEntryBytes = 256 * 1024;

/**
 * The per-entry error codes of PutEvents that refuse the entry itself, for good: sent again, it is refused again.
 * `InvalidArgument`: a parameter of the entry is not valid; `MalformedDetail`: its detail is not valid JSON. AWS
 * documents `InternalFailure` and `ThrottlingException` as retryable, and they are retried. Its other codes not
 * retryable refuse the caller, not the entry (`AccessDeniedException`, `InvalidAccountIdException`,
 * `NotAuthorizedForSourceException`, `NotAuthorizedForDetailTypeException`: the role or the bus's policy, which refuse
 * every entry alike and which a deploy fixes; retried, the outbox holds its events until then, and its iterator-age
 * alarm says so), or are about events simroot does not put (`RedactionFailure`: CloudTrail's). A code not named here
 * is retried.
 */
export const refusedForGood: ReadonlySet<string> = new Set(["InvalidArgument", "MalformedDetail"]);

/** What EventBridge refused for good: the events given to `publish` that one entry carried, and why. */
export interface Refusal {
  /** One event, or the facts of one request a packed entry carried (core ingest/reported.ts). */
  readonly events: readonly DomainEvent[];
  /** EventBridge's `ErrorCode`, or `EntryTooLarge` for an entry never sent (EventBridge would refuse its request whole). */
  readonly code: string;
  readonly message: string;
}

/**
 * Thrown by `publish` once every other event it was given is accepted: these events EventBridge refused for good (no
 * retry can put them). A caller that can set them aside (the outbox: a dead letter each) goes on; to any other, the
 * publish failed.
 */
export class EventsRefused extends SimrootError {
  readonly refusals: readonly Refusal[];

  constructor(refusals: readonly Refusal[]) {
    super(
      "bus.events_refused",
      "internal",
      `EventBridge refused ${refusals.length === 1 ? "an entry" : `${refusals.length} entries`} for good: ${refusals.map((refusal) => refusal.code).join(", ")}`,
      {
        detail: {
          refused: refusals.map((refusal) => ({
            eventIds: refusal.events.map((event) => event.id),
            code: refusal.code,
            message: refusal.message,
          })),
        },
      },
    );
    this.refusals = refusals;
  }
}

type Entry = ReturnType<typeof toPutEventsEntry>;

/** An entry's size as EventBridge counts it ("Calculating PutEvents event entry size"): 14 bytes for its time, and the UTF-8 bytes of its source, type, detail and resources. */
export const entryBytes = (entry: Entry) =>
  14 + [entry.Source, entry.DetailType, entry.Detail, ...entry.Resources].reduce((sum, text) => sum + Buffer.byteLength(text), 0);

/**
 * Publishes to an EventBridge bus, re-sending only the entries EventBridge reports as failed (up to 4 attempts). The
 * facts of one request travel packed, as one entry (core ingest/reported.ts). An entry refused for good (`refusedForGood`,
 * or too large to send) is not sent again: the others are published, then `EventsRefused` names it.
 */
export function eventBridgePublisher(busName: string, given?: EventBridgeClient): Publisher {
  // The client's package is loaded on first publish, not at module init (`lazy`).
  const bus = lazy(async () => {
    const { EventBridgeClient, PutEventsCommand } = await import("@aws-sdk/client-eventbridge");
    return { client: given ?? new EventBridgeClient(sdkClientSettings()), PutEventsCommand };
  });
  return {
    async publish(events, options) {
      const sdk = await bus();
      const givenEvents = new Set(events);
      // The events given that an entry carries: itself, or the facts it packs.
      const carried = (entry: DomainEvent): readonly DomainEvent[] =>
        givenEvents.has(entry) ? [entry] : (entry.data as unknown as ReportedFacts).facts;
      const refusals: Refusal[] = [];
      let batch: Batch = [];
      let bytes = 0;
      for (const event of options?.alone ? events : packReported(events)) {
        const entry = toPutEventsEntry(event, busName, options?.resources?.(event) ?? []);
        // An entry over the batch budget goes alone (the budget below closes the batch before and after it), and
        // EventBridge, whose bound moved (256 KB, 1 MB since 2026-01), says whether it takes it (`putBatch`).
        const size = entryBytes(entry);
        if (batch.length === batchSize || (batch.length > 0 && bytes + size > batchBytes)) {
          refusals.push(...(await putBatch(sdk, batch, carried)));
          batch = [];
          bytes = 0;
        }
        batch.push({ event, entry });
        bytes += size;
      }
      if (batch.length > 0) refusals.push(...(await putBatch(sdk, batch, carried)));
      if (refusals.length > 0) throw new EventsRefused(refusals);
    },
  };
}

type Batch = { readonly event: DomainEvent; readonly entry: Entry }[];

/** Puts a batch until every entry is accepted or refused for good; resolves with the refusals. */
async function putBatch(
  { client, PutEventsCommand: Put }: { client: EventBridgeClient; PutEventsCommand: typeof PutEventsCommand },
  batch: Batch,
  carried: (entry: DomainEvent) => readonly DomainEvent[],
): Promise<Refusal[]> {
  const refusals: Refusal[] = [];
  let pending = batch;
  for (let attempt = 1; pending.length > 0; attempt++) {
    let result: PutEventsCommandOutput;
    try {
      result = await client.send(new Put({ Entries: pending.map(({ entry }) => entry) }));
    } catch (error) {
      // A request of one entry over 256 KiB refused whole as invalid: over EventBridge's size bound, that entry, for good.
      // (Any other refusal of a request, a misnamed bus say, refuses every entry alike: retried, as before.)
      const name = (error as { name?: string }).name;
      if (pending.length !== 1 || name !== "ValidationException" || entryBytes(pending[0]!.entry) <= maxEntryBytes) throw error;
      refusals.push({ events: carried(pending[0]!.event), code: "EntryTooLarge", message: (error as Error).message });
      return refusals;
    }
    if (!result.FailedEntryCount) return refusals;
    const failed: Batch = [];
    pending.forEach((put, index) => {
      const answer = result.Entries?.[index];
      if (answer?.ErrorCode === undefined) return;
      if (refusedForGood.has(answer.ErrorCode))
        refusals.push({ events: carried(put.event), code: answer.ErrorCode, message: answer.ErrorMessage ?? "" });
      else failed.push(put);
    });
    pending = failed;
    if (pending.length === 0) return refusals;
    if (attempt >= attempts) {
      throw new SimrootError("bus.publish_failed", "unavailable", "EventBridge refused some events", {
        detail: { eventIds: pending.map(({ event }) => event.id) },
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
  }
  return refusals;
}
