/**
 * The outbox: the events a change caused are published from what was committed, never by the
 * verb or handler that committed it. Every committed change writes its events as audit records
 * in the same transaction; the audit table's stream (DynamoDB Streams, NEW_IMAGE) carries each
 * new record to a reader that publishes it: in AWS the stream's event source mapping invokes
 * `functions/src/outbox.ts`, locally `packages/local/src/outbox-reader.ts` reads the very same
 * stream from DynamoDB Local. A publish that fails is retried from the stream (the reader's
 * position moves only past what the bus accepted), so events are delayed, never lost.
 *
 * Except an event the bus refuses for good (core event/eventbridge-publisher.ts `EventsRefused`: an entry over
 * EventBridge's 256 KB, or one it calls malformed): retried, it would hold its stream shard, every later record of the
 * shard behind it, until the stream dropped them all after 24 hours. It becomes a dead letter of its tenant instead
 * (`/v1/bus/dead-letters`, rule `outbox`: its record's place in the audit trail and the refusal), and the outbox
 * moves on. A dead letter the store does not take fails the step, which is retried as any other.
 *
 * And an event the bus has not taken `outboxHoldAfterSeconds` after the stream got its record (the bus down or
 * throttling, a permission only a deploy restores): retried longer, the stream would drop it at 24 hours, and with it
 * every later record of its shard (review 103: lost for good, in AWS and locally). It becomes a dead letter too, `held`,
 * which a redrive publishes once the bus takes events again (event/dead-letters.ts), with its own event id.
 *
 * Delivery is at least once: after a failure part of a batch may be published again. Consumers
 * already are idempotent on the event id (the bus retries them too).
 *
 * The same stream has a second reader, the history (`projectFromStream`): it lists each record under its subject
 * (`subjectItem`) and writes its IP lease edges as lease items (identity/lease.ts). History, kept out of the commit's
 * transaction (where each item costs twice), and never lost: a write that fails is retried from the stream, by its own
 * position, so a bus that refuses events holds back the events alone (in AWS its own event source mapping and
 * function, `functions/src/history.ts`). Puts of the same items, so a batch read again changes nothing. A record that
 * has left the stream unprojected (24 hours of failing writes) is projected again by `reprojectHistory`.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { recordRefusedEvent } from "../event/dead-letter-record.ts";
import type { DomainEvent, Publisher } from "../event/event.ts";
import { EventsRefused } from "../event/eventbridge-publisher.ts";
import { leaseItem } from "../identity/lease-item.ts";
import { auditRecordSchema, eventOfRecord, recordOfItem, subjectItem, type AuditRecord } from "../ledger/audit-record.ts";
import type { Ports } from "../ports.ts";
import { batchPutAll } from "../store/batch-write.ts";
import { routingOf } from "./interests.ts";

/** The part of a DynamoDB stream record the outbox reads (the Lambda event's and the Streams API's shapes agree). */
export interface OutboxStreamRecord {
  readonly eventName?: string;
  readonly dynamodb?: {
    readonly NewImage?: Record<string, AttributeValue>;
    readonly SequenceNumber?: string;
    /** When the stream got the record: epoch seconds in a Lambda event, a Date from the Streams API. */
    readonly ApproximateCreationDateTime?: number | Date;
  };
}

/**
 * How long after the stream got a record the outbox keeps retrying its event before it holds it as a dead letter: half
 * the stream's 24 hours, so that a held event is written while its record is still there to be read again.
 */
export const outboxHoldAfterSeconds = 12 * 60 * 60;
/** The pause before a step of old records is published once more, before they are held. */
const holdRetryMs = 1_000;

/** When the stream got the record (epoch ms), else when it was committed (a record's own time, by its writer's clock). */
function streamedAt(record: OutboxStreamRecord, committed: AuditRecord): number {
  const at = record.dynamodb?.ApproximateCreationDateTime;
  if (at instanceof Date) return at.getTime();
  if (typeof at === "number") return at * 1000;
  return Date.parse(committed.time);
}

/**
 * An attribute value as the Streams client hands it over: an empty map may arrive as `{}`
 * (no type key at all; seen with DynamoDB Local), which `unmarshall` refuses. It is an empty map.
 */
function normalized(value: AttributeValue): AttributeValue {
  const record = value as unknown as Record<string, unknown>;
  const keys = Object.keys(record).filter((key) => record[key] !== undefined);
  if (keys.length === 0) return { M: {} };
  if (value.M) return { M: Object.fromEntries(Object.entries(value.M).map(([key, inner]) => [key, normalized(inner)])) };
  if (value.L) return { L: value.L.map(normalized) };
  return value;
}

/**
 * How long after the stream got it a record that does not parse is retried, rather than passed over (review 140): a
 * deploy replaces the functions one by one, so a writer of the next release may commit a record of a form this outbox
 * does not read before this outbox is replaced; retried from the stream, it is published by the next release's. A
 * record still unread after this (corrupted, or a release deployed out of order) is said and passed over (review 103):
 * it holds its stream shard, every record behind it, no longer.
 */
export const outboxUnreadableRetrySeconds = 15 * 60;

/** When the stream got a record that did not parse (epoch ms), or undefined when nothing tells. */
function unreadAt(record: OutboxStreamRecord, item: Record<string, unknown>): number | undefined {
  const at = record.dynamodb?.ApproximateCreationDateTime;
  if (at instanceof Date) return at.getTime();
  if (typeof at === "number") return at * 1000;
  const time = typeof item.time === "string" ? Date.parse(item.time) : Number.NaN;
  return Number.isNaN(time) ? undefined : time;
}

/** What a stream batch holds for the readers: its events, and where to resume when a record is left to a newer release. */
interface ReadStream {
  readonly streamed: StreamedRecord[];
  /** The sequence number of a record that did not parse within `outboxUnreadableRetrySeconds`: retried from there. */
  readonly unreadAt?: string;
}

/** `retryUnreadable`: the time now (epoch ms), to retry a recent record that does not parse instead of passing over it. */
function readStream(records: readonly OutboxStreamRecord[], onUnreadable?: () => void, retryUnreadable?: { now: number }): ReadStream {
  const events: StreamedRecord[] = [];
  for (const record of records) {
    const image = record.dynamodb?.NewImage;
    if (record.eventName !== "INSERT" || !image) continue;
    const item = unmarshall(normalized({ M: image }).M!);
    const parsed = auditRecordSchema.safeParse(recordOfItem(item));
    // Feed versions and subject listings share the table; a shard's record that does not parse (written by a newer
    // release, or corrupted) is retried while a deploy may be replacing this code (review 140), then said, not passed
    // over in silence (review 103): its event is not published.
    if (!parsed.success && /^T#.+#s\d{2}$/.test(String(item.pk))) {
      const at = unreadAt(record, item);
      if (retryUnreadable && at !== undefined && retryUnreadable.now - at < outboxUnreadableRetrySeconds * 1000)
        return { streamed: events, unreadAt: record.dynamodb?.SequenceNumber ?? "" };
      onUnreadable?.();
      console.error(
        JSON.stringify({
          level: "error",
          component: "outbox",
          message: "an audit record on the stream does not parse: its event is not published (see the audit trail)",
          pk: item.pk,
          sk: item.sk,
          eventId: item.eventId,
          issue: parsed.error.issues[0]?.message,
        }),
      );
    }
    if (parsed.success)
      events.push({
        event: eventOfRecord(parsed.data),
        record: parsed.data,
        expiresAt: item.expiresAt,
        indexed: item.gsi1pk !== undefined,
        sequenceNumber: record.dynamodb?.SequenceNumber ?? "",
        streamedAt: streamedAt(record, parsed.data),
      });
  }
  return { streamed: events };
}

/**
 * The events of the newly inserted audit records of a stream batch, in stream order, each with
 * the sequence number of its record. Feed version records and modifications are not events.
 */
export function eventsOfStream(records: readonly OutboxStreamRecord[], onUnreadable?: () => void): StreamedRecord[] {
  return readStream(records, onUnreadable).streamed;
}

export interface StreamedRecord {
  readonly event: DomainEvent;
  readonly record: AuditRecord;
  /** The record's TTL, which its projections share. */
  readonly expiresAt: unknown;
  /**
   * Written by code from before 2026-12-03 (a writer not yet upgraded while the outbox is): the `byDevice` index
   * lists it, and that code wrote its lease items in its transaction. Listing it again would list it twice.
   */
  readonly indexed: boolean;
  readonly sequenceNumber: string;
  /** When the stream got it (epoch ms). */
  readonly streamedAt: number;
}

/** The items a batch of committed records projects: each record under its subject, and the lease items of its edges. */
export function projectionsOf(tables: Ports["tables"], records: readonly StreamedRecord[]) {
  return records.flatMap(({ record, expiresAt, indexed }) => [
    ...(indexed ? [] : [subjectItem(tables, record, expiresAt)]),
    ...(record.leases ?? []).map((lease) => leaseItem(tables, record.tenantId, record.subject, lease)),
  ]);
}

/**
 * At most this many records per step (EventBridge's PutEvents takes 10 entries, the publisher splits further; a
 * projection's puts go 25 a batch). A failed step is where the stream resumes.
 */
const chunk = 100;

/**
 * Handles a stream batch's records `chunk` at a time, in order. Resolves with how many were handled and, when a step
 * failed, the sequence number of its first record (the caller resumes there) and why.
 */
async function inSteps(
  records: readonly OutboxStreamRecord[],
  step: (streamed: StreamedRecord[]) => Promise<void>,
  now: number,
  onUnreadable?: () => void,
): Promise<{ done: number; failedAt?: string; error?: unknown }> {
  const { streamed, unreadAt } = readStream(records, onUnreadable, { now });
  let done = 0;
  for (let start = 0; start < streamed.length; start += chunk) {
    const part = streamed.slice(start, start + chunk);
    try {
      await step(part);
      done += part.length;
    } catch (error) {
      const at = error instanceof StepFailedAt ? error.index : 0;
      return { done: done + at, failedAt: part[at]!.sequenceNumber, error: error instanceof StepFailedAt ? error.cause : error };
    }
  }
  if (unreadAt !== undefined)
    return { done, failedAt: unreadAt, error: new Error("an audit record does not parse: retried, for a newer release's reader") };
  return { done };
}

/** A step failed at its `index`th record, the ones before it done: the stream resumes there. */
class StepFailedAt extends Error {
  readonly index: number;
  constructor(index: number, cause: unknown) {
    super(`the step failed at its record ${index}`, { cause });
    this.index = index;
  }
}

/** Writes what a stream batch's records project (`projectionsOf`), in order (see `inSteps`). */
export async function projectFromStream(
  records: readonly OutboxStreamRecord[],
  ports: Pick<Ports, "db" | "tables">,
): Promise<{ projected: number; failedAt?: string; error?: unknown }> {
  const { done, ...failure } = await inSteps(records, (part) => batchPutAll(ports, projectionsOf(ports.tables, part)), Date.now());
  return { projected: done, ...failure };
}

/** A committed record whose event the bus refused for good: a dead letter now (`publishFromStream`). */
export interface RefusedRecord {
  readonly record: AuditRecord;
  readonly sequenceNumber: string;
  /** `<ErrorCode>: <ErrorMessage>`, as the letter gives it. */
  readonly reason: string;
  /** Its letter was there already: an earlier run of its step wrote it (the batch given again), and counted it. */
  readonly again: boolean;
  /** Not refused: the bus did not take it for `outboxHoldAfterSeconds` (a redrive publishes it). */
  readonly held?: boolean;
}

export interface PublishFromStreamOptions {
  /**
   * Told of a step's refused events as soon as their letters are written, before the next step: what counts them (the
   * function: `EventsRefused`) counts those not `again`, then and only then. Counted at the end of the batch instead, a
   * run that died past the step (a timeout in a later one) counted nothing, and the batch given again found the letters
   * written (review 74). Must not throw.
   */
  readonly onRefused?: (refused: readonly RefusedRecord[]) => void;
  /** Default `outboxHoldAfterSeconds`. */
  readonly holdAfterSeconds?: number;
  /**
   * When the caller must have answered (epoch ms; a Lambda's timeout, less a margin): a step of old records is not
   * published once more when that try would not end before it (review 106: two slow tries of a throttled bus ran past
   * the function's timeout, which held nothing, and the stream dropped the records).
   */
  readonly deadline?: number;
  /**
   * Told of each audit record of the batch that does not parse (review 103: only logged, nothing counted it): what
   * counts them (the function: `RecordsUnreadable`, which `OutboxRecordsUnreadable` alarms on). Must not throw.
   */
  readonly onUnreadable?: () => void;
}

/**
 * Publishes a stream batch's events, in order (see `inSteps`: a step is not done until the bus accepted it), but for
 * those the bus refuses for good, and a step the bus has not taken since `holdAfterSeconds` after the stream got its
 * first record: each of those events is recorded as a dead letter (`refused`, and `onRefused`), and the step is done.
 */
export async function publishFromStream(
  publisher: Publisher,
  records: readonly OutboxStreamRecord[],
  ports: Pick<Ports, "db" | "tables"> & Partial<Pick<Ports, "now">>,
  options: PublishFromStreamOptions = {},
): Promise<{ published: number; refused: RefusedRecord[]; failedAt?: string; error?: unknown }> {
  const refused: RefusedRecord[] = [];
  const holdAfterMs = (options.holdAfterSeconds ?? outboxHoldAfterSeconds) * 1000;
  const letter = async (letters: Omit<RefusedRecord, "again">[]) => {
    // Each letter written is told of, even when another of the step's failed (the step given again finds it written).
    const outcomes = await Promise.allSettled(letters.map((one) => recordRefusedEvent(ports, one)));
    const recorded = letters.flatMap((one, index) => {
      const outcome = outcomes[index]!;
      return outcome.status === "fulfilled" ? [{ ...one, again: !outcome.value }] : [];
    });
    if (recorded.length > 0) options.onRefused?.(recorded);
    const failed = outcomes.find((outcome) => outcome.status === "rejected");
    if (failed) throw failed.reason;
    refused.push(...recorded);
  };
  const { done, ...failure } = await inSteps(
    records,
    async (part) => {
      const events = part.map((entry) => entry.event);
      // Read for each step (after its records committed): which opt-in consumers each event's tenant has work for. Its
      // failure is the store's, not the bus's: retried, never held.
      const routing = await routingOf(ports, events);
      const deadline = options.deadline ?? Number.POSITIVE_INFINITY;
      /** One try, bounded by the deadline (review 107): an answer that comes after it may have published what is then held. */
      const publishInTime = async () => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        // No deadline, no bound (a timer longer than Node's 24.8 days fires at once).
        const late = new Promise<never>((_, reject) => {
          if (Number.isFinite(deadline))
            timer = setTimeout(
              () => reject(new Error("no answer from the bus before the function's deadline")),
              Math.max(0, deadline - Date.now()),
            );
        });
        try {
          await Promise.race([publisher.publish(events, routing), late]);
        } finally {
          clearTimeout(timer);
        }
      };
      const tried = Date.now();
      try {
        await publishInTime();
      } catch (error) {
        if (!(error instanceof EventsRefused)) {
          const now = (ports.now?.() ?? new Date()).getTime();
          const old = part.findIndex((entry) => now - entry.streamedAt < holdAfterMs);
          const held = old === -1 ? part : part.slice(0, old);
          if (held.length === 0) throw error;
          // Once more after a pause, the bus given its chance within this run: a failure that lasts is what is held
          // (review 104: one error of a bus that had been taking events held a step of a reader catching up), when there
          // is time for a try as long as the first.
          let again: unknown = error;
          if (deadline - Date.now() - holdRetryMs > Date.now() - tried) {
            await new Promise((resolve) => setTimeout(resolve, holdRetryMs));
            again = await publishInTime().then(
              () => undefined,
              (failed: unknown) => failed,
            );
            if (again === undefined) return;
            if (again instanceof EventsRefused) throw again;
          }
          // Held, the old records' events wait in the store (14 days) where the stream would drop them, for a redrive;
          // the younger ones of the step are retried from the stream, held when they are as old.
          const waited = Math.floor((now - held[0]!.streamedAt) / 3_600_000);
          const why = `held: the bus has not taken it for ${waited} hours (${String((again as Error)?.message ?? again)})`;
          await letter(held.map(({ record, sequenceNumber }) => ({ record, sequenceNumber, reason: why, held: true })));
          if (held.length < part.length) throw new StepFailedAt(held.length, again);
          return;
        }
        // Every other event of the step is on the bus; these never will be.
        await letter(
          error.refusals.flatMap(({ events: carried, code, message }) =>
            carried.map((event) => {
              const streamed = part.find((entry) => entry.event.id === event.id);
              if (!streamed) throw new Error(`the bus refused event ${event.id}, which is not of this step`, { cause: error });
              return { record: streamed.record, sequenceNumber: streamed.sequenceNumber, reason: `${code}: ${message}` };
            }),
          ),
        );
      }
    },
    (ports.now?.() ?? new Date()).getTime(),
    options.onUnreadable,
  );
  return { published: done - refused.length, refused, ...failure };
}
