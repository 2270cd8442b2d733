/**
 * A durable local bus with EventBridge semantics, for the rules declared in
 * packages/core/src/platform/rules.ts: content filtering with the same patterns, the same
 * envelope, at-least-once delivery to the very handler modules Lambda runs, retries with
 * exponential backoff and jitter, and a dead-letter store that can be listed and replayed.
 * A publish resolves only once its events are in the fsynced journal, so an acknowledged
 * event survives `kill -9` and is delivered after restart.
 */
import { randomUUID } from "node:crypto";
import {
  busSourceOf,
  entryBytes,
  EventsRefused,
  factsReportedType,
  isSimrootError,
  matchesPattern,
  maxEntryBytes,
  packReported,
  retryPolicy,
  toPutEventsEntry,
  validatePattern,
  type BusEnvelope,
  type DomainEvent,
  type EventPattern,
  type Publisher,
  type PublishOptions,
  type Refusal,
  type ReportedFacts,
} from "@simroot/core";
import { Journal } from "./journal.ts";

export interface BusTarget {
  readonly pattern: EventPattern;
  readonly invoke: (envelope: BusEnvelope) => Promise<unknown>;
}

export interface RetrySettings {
  readonly maxAttempts: number;
  readonly maxAgeMs: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export interface LocalBusOptions {
  /** Journal folder; omit for a bus that forgets everything on exit (tests). */
  readonly directory?: string;
  readonly targets: Readonly<Record<string, BusTarget>>;
  readonly retry?: Partial<RetrySettings>;
  /**
   * Handler invocations in flight at once: `concurrency` per target (each a function of its own in AWS, with its own
   * concurrency), and twice that across all (the account's). Per target since review 108: with one pool for every
   * target, one tenant's webhook receiver that never answers held every slot for its 15 s, and every tenant's
   * operator events waited behind it.
   */
  readonly concurrency?: number;
  readonly region?: string;
  /** Told of every delivery dead-lettered (after it is journaled): where the tenant's list of dead letters is kept. */
  readonly onDeadLetter?: (letter: DeadLetter) => Promise<void>;
  /** The largest entry the bus takes, counted as EventBridge counts it (default `localBusMaxEntryBytes`). */
  readonly maxEntryBytes?: number;
}

/**
 * The largest entry the local bus takes by default: EventBridge's documented bound (256 KB; core
 * `maxEntryBytes`), which the loopback EventBridge of the tests enforces too (`requestBytes`). AWS announced 1 MB for
 * existing buses in 2026, so a deployed bus may take more: a laptop bound above the deployed bus's delivers what the
 * cloud refuses (review 74: it had no bound), one below it at worst dead-letters locally what the cloud would take, the
 * side a laptop may err on. `SIMROOT_BUS_MAX_ENTRY_BYTES` (1048576) matches a bus that takes 1 MB.
 */
export const localBusMaxEntryBytes = maxEntryBytes;

export interface DeadLetter {
  readonly eventId: string;
  readonly rule: string;
  readonly reason: string;
  readonly attempts: number;
  readonly deadAt: string;
  readonly envelope: BusEnvelope;
}

type Entry =
  | { k: "event"; envelope: BusEnvelope; rules: string[] }
  | { k: "done"; id: string; rule: string }
  | { k: "dead"; id: string; rule: string; reason: string; attempts: number; at: string }
  | { k: "replay"; id: string; rule: string };

interface Delivery {
  readonly envelope: BusEnvelope;
  readonly rule: string;
  attempts: number;
  dueAt: number;
}

const deliveryKey = (id: string, rule: string) => `${id}\u0000${rule}`;
const compactAboveBytes = 16 * 1024 * 1024;

export class LocalBus implements Publisher {
  readonly #journal: Journal<Entry>;
  readonly #targets: Readonly<Record<string, BusTarget>>;
  readonly #retry: RetrySettings;
  readonly #concurrency: number;
  readonly #region: string;
  readonly #onDeadLetter: LocalBusOptions["onDeadLetter"];
  readonly #maxEntryBytes: number;
  readonly #pending = new Map<string, Delivery>();
  readonly #dead = new Map<string, DeadLetter>();
  readonly #ready: Delivery[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  #running = 0;
  readonly #runningOf = new Map<string, number>();
  #idleWaiters: (() => void)[] = [];
  #closed = false;

  private constructor(journal: Journal<Entry>, options: LocalBusOptions) {
    this.#journal = journal;
    this.#targets = options.targets;
    this.#concurrency = options.concurrency ?? 32;
    this.#region = options.region ?? "local";
    this.#onDeadLetter = options.onDeadLetter;
    this.#maxEntryBytes = options.maxEntryBytes ?? localBusMaxEntryBytes;
    this.#retry = {
      maxAttempts: retryPolicy.handlerAttempts,
      maxAgeMs: retryPolicy.maximumEventAgeSeconds * 1000,
      baseDelayMs: 100,
      maxDelayMs: 60_000,
      ...options.retry,
    };
  }

  /** Opens the bus, recovers what the journal holds, and resumes delivering it. */
  static async open(options: LocalBusOptions): Promise<LocalBus> {
    for (const target of Object.values(options.targets)) validatePattern(target.pattern);
    const { journal, entries } = await Journal.open<Entry>(options.directory);
    const bus = new LocalBus(journal, options);
    bus.#recover(entries);
    await journal.rewrite(() => bus.#liveEntries());
    for (const delivery of bus.#pending.values()) bus.#schedule(delivery);
    return bus;
  }

  /**
   * EventBridge PutEvents: resolves once every event is durably journaled. A request's facts are one entry, as in AWS.
   * An entry over `maxEntryBytes` is refused, as EventBridge refuses it (core eventbridge-publisher.ts): the others are
   * journaled, then `EventsRefused` names it (the outbox makes it a dead letter, rule `outbox`, as in AWS).
   */
  async publish(events: readonly DomainEvent[], options?: PublishOptions): Promise<void> {
    if (this.#closed) throw new Error("the local bus is closed");
    const given = new Set(events);
    const refusals: Refusal[] = [];
    const accepted: Extract<Entry, { k: "event" }>[] = [];
    for (const event of options?.alone ? events : packReported(events)) {
      const resources = options?.resources?.(event) ?? [];
      const bytes = entryBytes(toPutEventsEntry(event, "local", resources));
      if (bytes > this.#maxEntryBytes) {
        refusals.push({
          // The events given that the entry carries: itself, or the facts it packs.
          events: given.has(event) ? [event] : (event.data as unknown as ReportedFacts).facts,
          code: "EntryTooLarge",
          message: `the entry is ${bytes} bytes; this bus takes at most ${this.#maxEntryBytes} (SIMROOT_BUS_MAX_ENTRY_BYTES)`,
        });
        continue;
      }
      const envelope = this.#envelope(event, resources);
      const rules = Object.entries(this.#targets)
        .filter(([, target]) => matchesPattern(target.pattern, envelope))
        .map(([rule]) => rule);
      accepted.push({ k: "event", envelope, rules });
    }
    await this.#journal.append(accepted, true);
    for (const { envelope, rules } of accepted) {
      for (const rule of rules) {
        const delivery: Delivery = { envelope, rule, attempts: 0, dueAt: Date.now() };
        this.#pending.set(deliveryKey(envelope.id, rule), delivery);
        this.#schedule(delivery);
      }
    }
    if (refusals.length > 0) throw new EventsRefused(refusals);
  }

  deadLetters(): DeadLetter[] {
    return [...this.#dead.values()];
  }

  /**
   * Delivers `envelope` to `rule`'s target again (a redrive): journaled first, and no longer a
   * dead letter of this bus. Other rules the event matched are not told again.
   */
  async redeliver(rule: string, envelope: BusEnvelope): Promise<void> {
    if (!this.#targets[rule]) throw new Error(`no rule ${rule}`);
    await this.#journal.append([{ k: "event", envelope, rules: [rule] }], true);
    const key = deliveryKey(envelope.id, rule);
    this.#dead.delete(key);
    const delivery: Delivery = { envelope, rule, attempts: 0, dueAt: Date.now() };
    this.#pending.set(key, delivery);
    this.#schedule(delivery);
  }

  /** Sends dead-lettered deliveries (all, or those of one domain event id) to their targets again. */
  async replay(eventId?: string): Promise<number> {
    const chosen = [...this.#dead.values()].filter((letter) => eventId === undefined || letter.eventId === eventId);
    await this.#journal.append(
      chosen.map((letter) => ({ k: "replay" as const, id: letter.envelope.id, rule: letter.rule })),
      true,
    );
    for (const letter of chosen) {
      const key = deliveryKey(letter.envelope.id, letter.rule);
      this.#dead.delete(key);
      const delivery: Delivery = { envelope: letter.envelope, rule: letter.rule, attempts: 0, dueAt: Date.now() };
      this.#pending.set(key, delivery);
      this.#schedule(delivery);
    }
    return chosen.length;
  }

  /** `pending` deliveries; `pendingEvents` the events they carry (a packed entry of reported facts counts each fact). */
  status() {
    let pendingEvents = 0;
    for (const { envelope } of this.#pending.values()) {
      const packed = envelope.detail.type === factsReportedType ? envelope.detail.data.facts : undefined;
      pendingEvents += Array.isArray(packed) ? packed.length : 1;
    }
    return {
      pending: this.#pending.size,
      pendingEvents,
      deadLetters: this.#dead.size,
      inFlight: this.#running,
      journalBytes: this.#journal.bytes,
    };
  }

  /** Resolves once nothing is pending or in flight (every delivery done or dead-lettered, and recorded). */
  drained(): Promise<void> {
    if (this.#pending.size === 0 && this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Stops delivering; what is still pending stays in the journal for the next start. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#ready.length = 0;
    await this.#journal.close();
  }

  #envelope(event: DomainEvent, resources: readonly string[]): BusEnvelope {
    return {
      version: "0",
      id: randomUUID(),
      "detail-type": event.type,
      source: busSourceOf(event),
      account: "000000000000",
      time: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
      region: this.#region,
      resources: [...resources],
      detail: event,
    };
  }

  #recover(entries: readonly Entry[]) {
    const envelopes = new Map<string, BusEnvelope>();
    for (const entry of entries) {
      if (entry.k === "event") {
        envelopes.set(entry.envelope.id, entry.envelope);
        for (const rule of entry.rules) {
          this.#pending.set(deliveryKey(entry.envelope.id, rule), { envelope: entry.envelope, rule, attempts: 0, dueAt: Date.now() });
        }
        continue;
      }
      const key = deliveryKey(entry.id, entry.rule);
      if (entry.k === "done") {
        this.#pending.delete(key);
      } else if (entry.k === "dead") {
        const envelope = envelopes.get(entry.id);
        this.#pending.delete(key);
        if (envelope) {
          this.#dead.set(key, {
            eventId: envelope.detail.id,
            rule: entry.rule,
            reason: entry.reason,
            attempts: entry.attempts,
            deadAt: entry.at,
            envelope,
          });
        }
      } else {
        const letter = this.#dead.get(key);
        this.#dead.delete(key);
        if (letter) this.#pending.set(key, { envelope: letter.envelope, rule: letter.rule, attempts: 0, dueAt: Date.now() });
      }
    }
  }

  /** The shortest journal that recovers to the current state. */
  #liveEntries(): Entry[] {
    const byEvent = new Map<string, { envelope: BusEnvelope; rules: string[] }>();
    const add = (envelope: BusEnvelope, rule: string) => {
      const slot = byEvent.get(envelope.id) ?? { envelope, rules: [] };
      slot.rules.push(rule);
      byEvent.set(envelope.id, slot);
    };
    for (const delivery of this.#pending.values()) add(delivery.envelope, delivery.rule);
    for (const letter of this.#dead.values()) add(letter.envelope, letter.rule);
    const events: Entry[] = [...byEvent.values()].map(({ envelope, rules }) => ({ k: "event", envelope, rules }));
    const dead: Entry[] = [...this.#dead.values()].map((letter) => ({
      k: "dead",
      id: letter.envelope.id,
      rule: letter.rule,
      reason: letter.reason,
      attempts: letter.attempts,
      at: letter.deadAt,
    }));
    return [...events, ...dead];
  }

  #schedule(delivery: Delivery) {
    const wait = delivery.dueAt - Date.now();
    if (wait <= 0) {
      this.#ready.push(delivery);
      this.#pump();
      return;
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#ready.push(delivery);
      this.#pump();
    }, wait);
    timer.unref();
    this.#timers.add(timer);
  }

  #pump() {
    let index = 0;
    while (!this.#closed && this.#running < this.#concurrency * 2 && index < this.#ready.length) {
      const delivery = this.#ready[index]!;
      const busy = this.#runningOf.get(delivery.rule) ?? 0;
      // Its target's slots are taken: the next of another target goes first.
      if (busy >= this.#concurrency) {
        index++;
        continue;
      }
      this.#ready.splice(index, 1);
      this.#running++;
      this.#runningOf.set(delivery.rule, busy + 1);
      void this.#deliver(delivery).finally(() => {
        this.#running--;
        const left = (this.#runningOf.get(delivery.rule) ?? 1) - 1;
        if (left > 0) this.#runningOf.set(delivery.rule, left);
        else this.#runningOf.delete(delivery.rule);
        this.#pump();
        this.#notifyIfIdle();
      });
    }
  }

  async #deliver(delivery: Delivery) {
    const key = deliveryKey(delivery.envelope.id, delivery.rule);
    const target = this.#targets[delivery.rule];
    delivery.attempts++;
    try {
      if (!target) throw Object.assign(new Error(`rule ${delivery.rule} no longer exists`), { permanent: true });
      await target.invoke(delivery.envelope);
      if (this.#closed) return;
      this.#pending.delete(key);
      void this.#journal.append([{ k: "done", id: delivery.envelope.id, rule: delivery.rule }], false);
    } catch (error) {
      if (this.#closed) return;
      const reason = this.#deadLetterReason(delivery, error);
      if (reason === undefined) {
        delivery.dueAt = Date.now() + this.#backoff(delivery.attempts);
        this.#schedule(delivery);
        return;
      }
      const letter: DeadLetter = {
        eventId: delivery.envelope.detail.id,
        rule: delivery.rule,
        reason,
        attempts: delivery.attempts,
        deadAt: new Date().toISOString(),
        envelope: delivery.envelope,
      };
      await this.#bury(key, letter, delivery.attempts);
    }
    if (this.#pending.size === 0 && this.#journal.bytes > compactAboveBytes) {
      await this.#journal.rewrite(() => this.#liveEntries());
    }
  }

  /**
   * Records a dead letter in the store (where it is listed and redriven), then journals it as dead (review 159: journaled
   * first, a failed record, or a kill between the two, left the letter in the journal alone). Not recorded: the record
   * alone is tried again after a backoff, the consumer not run again (review 161), and the delivery stays pending, so a
   * restart delivers it again; recorded but not journaled (killed between, or closed meanwhile): delivered again after a
   * restart, and recorded again, under the same id.
   */
  async #bury(key: string, letter: DeadLetter, attempts: number): Promise<void> {
    try {
      await this.#onDeadLetter?.(letter);
    } catch (failure) {
      console.error(
        JSON.stringify({ level: "error", msg: "recording a dead letter failed", eventId: letter.eventId, error: String(failure) }),
      );
      if (this.#closed) return;
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        void this.#bury(key, letter, attempts + 1);
      }, this.#backoff(attempts));
      timer.unref();
      this.#timers.add(timer);
      return;
    }
    if (this.#closed) return;
    try {
      await this.#journal.append(
        [{ k: "dead", id: letter.envelope.id, rule: letter.rule, reason: letter.reason, attempts: letter.attempts, at: letter.deadAt }],
        true,
      );
    } catch (error) {
      // Closed meanwhile (review 161: an unhandled rejection at shutdown): journaled as pending still, delivered again.
      if (this.#closed) return;
      throw error;
    }
    this.#pending.delete(key);
    this.#dead.set(key, letter);
    this.#notifyIfIdle();
  }

  /** Why the delivery goes to the dead-letter store now, or `undefined` to retry it. */
  #deadLetterReason(delivery: Delivery, error: unknown): string | undefined {
    const message = error instanceof Error ? error.message : String(error);
    if ((isSimrootError(error) && error.kind === "input") || (error as { permanent?: boolean })?.permanent) {
      return `rejected: ${message}`;
    }
    if (delivery.attempts >= this.#retry.maxAttempts) return `retries exhausted after ${delivery.attempts} attempts: ${message}`;
    if (Date.now() - Date.parse(delivery.envelope.time) > this.#retry.maxAgeMs) return `event too old to retry: ${message}`;
    return undefined;
  }

  #backoff(attempts: number): number {
    const ceiling = Math.min(this.#retry.maxDelayMs, this.#retry.baseDelayMs * 2 ** (attempts - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  #notifyIfIdle() {
    if (this.#pending.size > 0 || this.#running > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
