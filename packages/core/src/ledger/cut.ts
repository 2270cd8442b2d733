/**
 * One cut's feed entries, derived from the shard records it covers. The sequencer writes them; the verifier, and a
 * sequencer about to adopt a version found past the head, derive them again and compare. One entry per key: its
 * last change, at that change's position (shards in order, each shard's records in sequence order).
 *
 * A key written on several shards (an IP binding moving between devices whose ids hash apart) has no order between
 * its shards' records: its changes carry the revision they wrote to the key's store item (writes conditional on it),
 * and the cut's entry is the change of the highest revision. The sequencer reads the shard heads one by one, not as
 * one serializable read (which any write of a head cancels: see sequencer.ts), so a cut may hold a binding's change
 * while an earlier one, on another shard, waits for the next cut. The binding's store item names the record of the
 * change that wrote its revision (the ledger stamps it): when that change is past the cut, the cut reaches it
 * (`beyondCut`); when an earlier version carried it, the earlier change is left out, and the version names the record
 * that overtook it (`leftOutOf`), which the verifier checks from the records alone (`leftDefect`). A change is never
 * served after one that followed it.
 *
 * Records written before revisions: a binding written on several shards within one cut carries the store's value,
 * read when the cut was sequenced.
 */
import { canonicalJson } from "./chain.ts";
import type { FeedVersionRecord } from "./feed-version.ts";

export type CutEntry = FeedVersionRecord["entries"][number];
export interface CutRecord {
  readonly seq: number;
  readonly feed?: readonly {
    readonly kind: string;
    readonly key: string;
    readonly value: Record<string, unknown> | null;
    readonly rev?: number;
    readonly labelsBefore?: Readonly<Record<string, string>>;
  }[];
}
export interface DerivedEntry {
  readonly entry: CutEntry;
  /** The shards whose records in the cut change the key. */
  readonly shards: ReadonlySet<number>;
  /** The store revision the entry's change wrote (bindings written since revisions). */
  readonly rev?: number;
}

/** A derived entry's key as `kind|key`. */
export const entryId = ({ kind, key }: { kind: string; key: string }) => `${kind}|${key}`;

/** The cut's entries from each shard's records in it (index = shard, records in sequence order). */
export function cutEntries(perShard: readonly (readonly CutRecord[])[]): DerivedEntry[] {
  const byKey = new Map<string, DerivedEntry & { shards: Set<number> }>();
  /**
   * Per key, its labels before the cut's first change of it (a change that did not move them left them as its value
   * has them), and whether a change of the cut moved them: then the entry carries them (`labelsBefore`). A device's
   * changes are all on its own shard, in sequence order.
   */
  const before = new Map<string, { labels: Readonly<Record<string, string>> | undefined; moved: boolean }>();
  perShard.forEach((records, shard) => {
    for (const record of records) {
      for (const change of record.feed ?? []) {
        const id = entryId(change);
        const known = byKey.get(id);
        const shards = known?.shards ?? new Set<number>();
        shards.add(shard);
        byKey.delete(id); // re-inserted last: the map keeps each key at its latest position
        const was = before.get(id) ?? { labels: change.labelsBefore ?? labelsOf(change.value), moved: false };
        before.set(id, { labels: was.labels, moved: was.moved || change.labelsBefore !== undefined });
        // A revision lower than one already in the cut is an earlier change, read from a later shard.
        const earlier = known?.rev !== undefined && change.rev !== undefined && change.rev < known.rev;
        byKey.set(
          id,
          earlier
            ? { ...known, shards }
            : {
                entry: { kind: change.kind, key: change.key, value: change.value, shard, seq: record.seq },
                shards,
                ...(change.rev === undefined ? {} : { rev: change.rev }),
              },
        );
      }
    }
  });
  return [...byKey].map(([id, derived]) => {
    const was = before.get(id)!;
    return was.moved ? { ...derived, entry: { ...derived.entry, labelsBefore: { ...was.labels } } } : derived;
  });
}

const labelsOf = (value: Record<string, unknown> | null) => (value?.labels ?? undefined) as Readonly<Record<string, string>> | undefined;

/** Whether the entry's value is the store's (records written before revisions, see above), not its record's. */
export const storeValued = ({ entry, shards, rev }: DerivedEntry) => entry.kind === "binding" && shards.size > 1 && rev === undefined;

/** Where a change is recorded: its shard and its record's sequence there. */
export interface RecordPosition {
  readonly shard: number;
  readonly seq: number;
}

/** A binding change a cut leaves out, and the record of the later change (a higher revision) an earlier version carried. */
export interface LeftOut {
  readonly key: string;
  readonly rev: number;
  readonly by: RecordPosition;
}

/** A binding's store item as the sequencer reads it: its revision, and where the change that wrote it is recorded. */
export interface StoredBinding {
  readonly rev: number;
  readonly by?: RecordPosition;
}

/** The derived binding changes the store holds a later revision of, with that revision's record. */
function overtaken(derived: readonly DerivedEntry[], store: ReadonlyMap<string, StoredBinding>) {
  return derived.flatMap((d) => {
    const stored = d.entry.kind === "binding" && d.rev !== undefined ? store.get(d.entry.key) : undefined;
    return stored?.by && d.rev !== undefined && stored.rev > d.rev ? [{ derived: d, rev: d.rev, by: stored.by }] : [];
  });
}

/**
 * The shards a cut must reach further on (shard, sequence): the store holds a later revision of one of its bindings,
 * written by a change past the cut. Reaching it, the cut carries that change (the highest revision) instead.
 */
export function beyondCut(derived: readonly DerivedEntry[], store: ReadonlyMap<string, StoredBinding>, vector: readonly number[]) {
  const reach = new Map<number, number>();
  for (const { by } of overtaken(derived, store)) {
    if (by.seq > (vector[by.shard] ?? 0)) reach.set(by.shard, Math.max(reach.get(by.shard) ?? 0, by.seq));
  }
  return reach;
}

/**
 * The binding changes of a cut that it leaves out: those whose address the store holds at a later revision, written by
 * a change an earlier version carried (at or before `base`, the vector the cut starts from), which it names.
 */
export const leftOutOf = (derived: readonly DerivedEntry[], store: ReadonlyMap<string, StoredBinding>, base: readonly number[]) =>
  overtaken(derived, store).flatMap(({ derived: d, rev, by }): LeftOut[] =>
    by.seq <= (base[by.shard] ?? 0) ? [{ key: d.entry.key, rev, by }] : [],
  );

/**
 * Why the binding changes a cut says it leaves out (`left`) are not ones it may, or undefined: each must be the cut's
 * change of its address (its highest revision there), and name a record at or before `base` (an earlier version carried
 * it) that changes the address at a later revision (`byFeed`: that record's feed changes).
 */
export function leftDefect(
  derived: readonly DerivedEntry[],
  left: readonly LeftOut[],
  base: readonly number[],
  byFeed: (position: RecordPosition) => CutRecord["feed"] | undefined,
): string | undefined {
  const named = new Set<string>();
  for (const { key, rev, by } of left) {
    if (named.has(key)) return `names binding ${key} as left out twice`;
    named.add(key);
    const own = derived.find((d) => d.entry.kind === "binding" && d.entry.key === key);
    if (!own || own.rev !== rev) return `names binding ${key} at revision ${rev} as left out: not the cut's change of it`;
    if (by.seq > (base[by.shard] ?? 0)) {
      return `leaves out binding ${key} for shard ${by.shard}'s record ${by.seq}, which no earlier version carried`;
    }
    const later = byFeed(by)?.find((change) => change.kind === "binding" && change.key === key);
    if (later?.rev === undefined || later.rev <= rev) {
      return `leaves out binding ${key} for shard ${by.shard}'s record ${by.seq}, which is no later change of it`;
    }
  }
  return undefined;
}

/** The ids of the entries `left` names. */
export const leftIds = (left: readonly LeftOut[]) => new Set(left.map(({ key }) => entryId({ kind: "binding", key })));

/**
 * Why `actual` (a cut's entries, across its versions, in order) is not what its records give, or undefined. The
 * entries in `superseded` (the ids of those the cut names as left out: see `leftDefect`) are not carried.
 */
export function cutMismatch(
  derived: readonly DerivedEntry[],
  actual: readonly CutEntry[],
  superseded: ReadonlySet<string> = new Set(),
): string | undefined {
  let index = 0;
  for (const want of derived) {
    const got = actual[index];
    const { kind, key, shard, seq } = want.entry;
    if (superseded.has(entryId(want.entry))) {
      if (got && got.kind === kind && got.key === key) return `carries ${kind} ${key}, which it names as left out`;
      continue;
    }
    if (!got) return `leaves out ${kind} ${key} of shard ${shard}'s record ${seq}`;
    if (got.kind !== kind || got.key !== key || got.shard !== shard || got.seq !== seq) {
      return `carries ${got.kind} ${got.key} from shard ${got.shard}'s record ${got.seq} where the cut's next change is ${kind} ${key} of shard ${shard}'s record ${seq}`;
    }
    if (!storeValued(want) && canonicalJson(got.value) !== canonicalJson(want.entry.value)) {
      return `entry ${kind} ${key} does not carry the value of shard ${shard}'s record ${seq}`;
    }
    if (canonicalJson(got.labelsBefore ?? null) !== canonicalJson(want.entry.labelsBefore ?? null)) {
      return `entry ${kind} ${key} does not carry the labels its cut's records held before it`;
    }
    index++;
  }
  const extra = actual[index];
  return extra ? `carries ${extra.kind} ${extra.key} beyond the cut's changes (a repeat, or no change of its records)` : undefined;
}
