/**
 * How reported facts travel the bus: the facts of one webhook request, packed into one bus entry (`facts.reported`),
 * applied by one invocation of the applier. On EventBridge every entry is an event billed (per 64 KB) and, through the
 * applier's rule, a Lambda invocation; one entry per fact made each fact an invocation of its own, whose commit
 * sequenced alone (a cut of 16 shard heads and a feed version for one change). Packed, the facts of a request commit
 * side by side in one instance, as they do in one process: their commits share each shard's transactions and one
 * sequencing run.
 *
 * Packing is the publishers' (EventBridge's and the local bus's), so that what a verb publishes stays one event per
 * fact. A fact that a rule besides the applier routes by its content (`routedAlone`: an eUICC's profile switch, which
 * the detectors judge) travels alone, so that its rule still sees it.
 */
import { SimrootError } from "../error.ts";
import { newId } from "../id.ts";
import type { DomainEvent } from "../event/event.ts";
import { judgedProfileSwitchCauses } from "../platform/bus-names.ts";
import type { IngestedEvent } from "./ingested.ts";

export const factsReportedType = "facts.reported";

/** Facts a `facts.reported` entry carries at most (one invocation applies them). */
export const maxFactsPerEntry = 25;
/** Bytes of JSON a packed entry stays under: EventBridge bills an entry per 64 KB, and takes 256 KB at most. */
export const maxPackedBytes = 60 * 1024;

export type ReportedFacts = {
  readonly sourceId: string;
  readonly facts: readonly IngestedEvent[];
};

export type FactsReported = DomainEvent<typeof factsReportedType, ReportedFacts>;

/**
 * Whether a rule besides the applier's routes this reported fact by its content, so that it must travel alone: an
 * eUICC's profile switch for a cause the detectors judge (platform rules.ts `profileSwitches`; its test holds the two
 * together). Kept apart from the rules' definitions, which every function that publishes would otherwise carry.
 */
export function routedAlone(event: DomainEvent): boolean {
  const cause = (event.data as { event?: { data?: { cause?: unknown } } }).event?.data?.cause;
  return event.type === "profile.enabled" && (judgedProfileSwitchCauses as readonly unknown[]).includes(cause);
}

const packable = (event: DomainEvent) =>
  event.origin === "ingest" && event.type !== factsReportedType && typeof event.data.sourceId === "string" && !routedAlone(event);

/** One request's facts share a tenant, a source and a request id: only such facts share an entry. */
const sameRequest = (a: DomainEvent, b: DomainEvent) =>
  a.tenantId === b.tenantId && a.requestId === b.requestId && a.data.sourceId === b.data.sourceId;

/**
 * The bus entries for `events`: runs of packable facts of one request as `facts.reported` entries (a run of one stays
 * as it is), everything else unchanged, in order.
 */
export function packReported(events: readonly DomainEvent[]): DomainEvent[] {
  const entries: DomainEvent[] = [];
  let run: DomainEvent[] = [];
  let bytes = 0;
  const close = () => {
    if (run.length === 1) entries.push(run[0]!);
    else if (run.length > 1) entries.push(packed(run as IngestedEvent[]));
    run = [];
    bytes = 0;
  };
  for (const event of events) {
    if (!packable(event)) {
      close();
      entries.push(event);
      continue;
    }
    const size = Buffer.byteLength(JSON.stringify(event));
    if (run.length > 0 && (!sameRequest(run[0]!, event) || run.length === maxFactsPerEntry || bytes + size > maxPackedBytes)) close();
    run.push(event);
    bytes += size;
  }
  close();
  return entries;
}

function packed(facts: IngestedEvent[]): FactsReported {
  const first = facts[0]!;
  return {
    id: newId("event", Date.parse(first.time)),
    type: factsReportedType,
    tenantId: first.tenantId,
    subject: first.data.sourceId,
    time: first.time,
    actor: first.actor,
    requestId: first.requestId,
    origin: "ingest",
    data: { sourceId: first.data.sourceId, facts },
  };
}

/**
 * The facts of a bus entry the applier received: the one fact, or the facts a `facts.reported` entry packs. A packed
 * fact of another tenant or source than its entry's is refused (malformed: only simroot's ingestion packs entries).
 */
export function reportedFacts(entry: DomainEvent): readonly DomainEvent[] {
  if (entry.type !== factsReportedType) return [entry];
  const { sourceId, facts } = entry.data as Partial<ReportedFacts>;
  if (!Array.isArray(facts) || facts.length === 0 || typeof sourceId !== "string") {
    throw new SimrootError("ingest.malformed_fact", "input", `Entry ${entry.id} packs no facts`);
  }
  for (const fact of facts as DomainEvent[]) {
    if (fact?.tenantId !== entry.tenantId || fact.data?.sourceId !== sourceId || fact.origin !== "ingest") {
      throw new SimrootError("ingest.malformed_fact", "input", `Entry ${entry.id} packs a fact of another tenant or source`);
    }
    if (fact.type === factsReportedType) throw new SimrootError("ingest.malformed_fact", "input", `Entry ${entry.id} packs an entry`);
  }
  return facts;
}
