/**
 * How reported facts travel the bus: the facts of one webhook request, packed into one bus entry (`facts.reported`),
 * applied by one invocation of the applier. On EventBridge every entry is an event billed (per 64 KB) and, through the
 * applier's rule, a Lambda invocation; one entry per fact made each fact an invocation of its own, whose commit
 * sequenced alone (a cut of 16 shard heads and a feed version for one change). Packed, the facts of a request commit
 * side by side in one instance, as they do in one process: their commits share each shard's transactions and one
 * sequencing run.
 *
 * The facts of one device in one request travel in one entry, whatever their number (up to `maxFactsPerDevice`, which
 * ingestion enforces): the applier applies them in the order the fold keeps them, by time (`inFoldOrder`), whatever
 * order the request lists them in. Split over entries, which the bus delivers side by side and in any order (SQS's
 * standard queue in AWS), a device's later facts were applied first, and its earlier ones, more than 32 behind (the
 * fold's window), were dropped as stale: a core's ten minutes of a flapping session in one webhook left 71 to 90 of
 * its 111 lease edges (review 138).
 *
 * Packing is the publishers' (EventBridge's and the local bus's), so that what a verb publishes stays one event per
 * fact. A fact that a rule besides the applier routes by its content (`routedAlone`: an eUICC's profile switch, which
 * the detectors judge) travels alone, so that its rule still sees it.
 */
import { SimrootError } from "../error.ts";
import { newId } from "../id.ts";
import type { DomainEvent } from "../event/event.ts";
import { bySequence, byTime, isProfileFact, type Fact } from "../identity/fact.ts";
import { judgedProfileSwitchCauses } from "../platform/bus-names.ts";
import type { IngestedEvent } from "./ingested.ts";

export const factsReportedType = "facts.reported";

/** Facts of several devices a `facts.reported` entry carries at most (one invocation applies them, devices side by side). */
export const maxFactsPerEntry = 25;
/** Bytes of JSON a packed entry of several devices' facts stays under: EventBridge bills an entry per 64 KB. */
export const maxPackedBytes = 60 * 1024;
/**
 * Facts one request reports of one device at most, and their bytes of JSON at most: they travel in one entry (never
 * split, or their order is lost), which EventBridge takes up to 256 KB, and one invocation applies them one after the
 * other, well within its 60 s. A request reporting more of one device is refused (`tooManyForDevice`): split it.
 */
export const maxFactsPerDevice = 250;
export const maxDeviceBytes = 200 * 1024;

/**
 * What a fact names its device by, as `refIdentifiers` (device/store.ts) would resolve it: its firm identifiers, else its
 * IMEI, else its address; a reference of none of them, whole.
 */
function namesOf(fact: DomainEvent): string[] {
  const device = (fact.data.event as { device?: unknown } | undefined)?.device;
  if (device === null || typeof device !== "object") return [`fact:${fact.id}`];
  const named = Object.entries(device).flatMap(([kind, value]) =>
    typeof value === "string" && value !== "" ? [[kind, spelled(kind, value)] as const] : [],
  );
  const firm = named.filter(([kind]) => kind !== "imei" && kind !== "ip");
  const chosen = firm.length > 0 ? firm : named.some(([kind]) => kind === "imei") ? named.filter(([kind]) => kind === "imei") : named;
  return chosen.length > 0 ? chosen.map(([kind, value]) => `${kind}:${value}`) : [`ref:${JSON.stringify(device)}`];
}

/** An identifier as the alias it resolves by, where its spellings are cheap to tell (an MSISDN's '+', an ICCID's F). */
const spelled = (kind: string, value: string) =>
  kind === "msisdn" ? value.replace(/^\+/, "") : kind === "iccid" ? value.replace(/F$/i, "") : value;

/**
 * The device of each fact, as one request names it: facts naming a device by any identifier in common are one device's
 * (review 141: grouped by the reference as written, a core naming a device by IMSI in its attaches and by IMSI and
 * MSISDN in its detaches had them packed as two devices, in entries applied side by side, out of order). The applier
 * applies one device's facts of an entry in time order (`inFoldOrder`).
 */
export function devicesOf(facts: readonly DomainEvent[]): string[] {
  const parent = new Map<string, string>();
  const root = (name: string): string => {
    let at = name;
    while (parent.get(at) !== at) at = parent.get(at)!;
    parent.set(name, at);
    return at;
  };
  const names = facts.map(namesOf);
  for (const named of names) {
    for (const name of named) if (!parent.has(name)) parent.set(name, name);
    for (const name of named.slice(1)) parent.set(root(name), root(named[0]!));
  }
  return names.map((named) => root(named[0]!));
}

/**
 * The facts at `indexes` (one device's of an entry) in the order the device's fold keeps them (identity/fact.ts): its
 * facts of time by their time, then key; its eUICC's profile facts by seqNumber, each kind in the places the request
 * gave it (the fold keeps each in a window of its own). Applied as listed, a fact listed after 32 of the device's
 * later ones fell before its window and was dropped as stale, though the whole history came in one request (review
 * 138: 111 facts listed newest first left 33 lease edges). A fact with no time to read keeps its place (it is refused).
 */
export function inFoldOrder(facts: readonly DomainEvent[], indexes: readonly number[]): number[] {
  const placed = indexes.map((index, position) => ({ index, position, fact: foldPlace(facts[index]!) }));
  const ordered = [...indexes];
  for (const profile of [false, true]) {
    const kind = placed.filter(({ fact }) => fact !== undefined && isProfileFact(fact) === profile);
    const sorted = [...kind].sort((a, b) => (profile ? bySequence : byTime)(a.fact!, b.fact!));
    // By position, not a search of `indexes` per fact: a registered device's parked backlog may hold thousands.
    kind.forEach(({ position }, n) => {
      ordered[position] = sorted[n]!.index;
    });
  }
  return ordered;
}

/** What the fold orders a reported fact by (`toFact`'s type, time, key and seqNumber), if it has a time to read. */
function foldPlace(reported: DomainEvent): Fact | undefined {
  const event = reported.data?.event as { type?: unknown; occurredAt?: unknown; dedupeKey?: unknown; sequence?: unknown } | undefined;
  const time = typeof event?.occurredAt === "string" ? Date.parse(event.occurredAt) : Number.NaN;
  if (typeof event?.type !== "string" || !Number.isFinite(time)) return undefined;
  return {
    type: event.type,
    at: new Date(time).toISOString(),
    key: `${String(reported.data.sourceId)}|${String(event.dedupeKey)}`,
    ...(typeof event.sequence === "number" ? { seq: event.sequence } : {}),
  } as Fact;
}

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
 * as it is), everything else unchanged, in order. A run's facts of one device, in their order, go into one entry
 * together: entries take whole devices, up to `maxFactsPerEntry` facts and `maxPackedBytes`, and a device with more
 * has an entry of its own.
 */
export function packReported(events: readonly DomainEvent[]): DomainEvent[] {
  const entries: DomainEvent[] = [];
  let run: DomainEvent[] = [];
  const close = () => {
    entries.push(...packedRun(run));
    run = [];
  };
  for (const event of events) {
    if (!packable(event)) {
      close();
      entries.push(event);
      continue;
    }
    if (run.length > 0 && !sameRequest(run[0]!, event)) close();
    run.push(event);
  }
  close();
  return entries;
}

/** The entries for a run of one request's facts: each device's facts whole, in order. */
function packedRun(run: readonly DomainEvent[]): DomainEvent[] {
  const byDevice = new Map<string, { facts: DomainEvent[]; bytes: number }>();
  const devices = devicesOf(run);
  run.forEach((fact, index) => {
    const device = byDevice.get(devices[index]!) ?? { facts: [], bytes: 0 };
    device.facts.push(fact);
    device.bytes += Buffer.byteLength(JSON.stringify(fact));
    byDevice.set(devices[index]!, device);
  });
  const entries: DomainEvent[] = [];
  let facts: DomainEvent[] = [];
  let bytes = 0;
  const close = () => {
    if (facts.length === 1) entries.push(facts[0]!);
    else if (facts.length > 1) entries.push(packed(facts as IngestedEvent[]));
    facts = [];
    bytes = 0;
  };
  for (const device of byDevice.values()) {
    if (facts.length > 0 && (facts.length + device.facts.length > maxFactsPerEntry || bytes + device.bytes > maxPackedBytes)) close();
    facts.push(...device.facts);
    bytes += device.bytes;
  }
  close();
  return entries;
}

/** The 413 of a request reporting more of one device than one entry carries (`maxFactsPerDevice`, `maxDeviceBytes`). */
export function tooManyForDevice(events: readonly DomainEvent[]): SimrootError | undefined {
  const devices = new Map<string, { count: number; bytes: number }>();
  const facts = events.filter(packable);
  const named = devicesOf(facts);
  facts.forEach((event, index) => {
    const device = devices.get(named[index]!) ?? { count: 0, bytes: 0 };
    device.count += 1;
    device.bytes += Buffer.byteLength(JSON.stringify(event));
    devices.set(named[index]!, device);
  });
  for (const [device, { count, bytes }] of devices)
    if (count > maxFactsPerDevice || bytes > maxDeviceBytes)
      return new SimrootError(
        "ingest.too_many_for_device",
        "input",
        `A request reports at most ${maxFactsPerDevice} facts and ${maxDeviceBytes / 1024} KB of one device, applied in time order (this one ${count} facts, ${Math.ceil(bytes / 1024)} KB of ${device}): split it`,
        { detail: { status: 413 } },
      );
  return undefined;
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
