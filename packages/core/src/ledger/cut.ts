/**
 * One cut's feed entries, derived from the shard records it covers. The sequencer writes them; the verifier, and a
 * sequencer about to adopt a version found past the head, derive them again and compare. One entry per key: its
 * last change, at that change's position (shards in order, each shard's records in sequence order).
 *
 * A key written on several shards (an IP binding moving between devices whose ids hash apart) has no order between
 * its shards' records: its changes carry the revision they wrote to the key's store item (writes conditional on it),
 * and the cut's entry is the change of the highest revision. The sequencer reads the shard heads one by one, not as
 * one serializable read (which any write of a head cancels: see sequencer.ts), so a cut may hold a binding's change
 * while an earlier one, on another shard, waits for the next cut: that one is then superseded (the store's revision
 * is past it) and left out, never served after the change that followed it.
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
  perShard.forEach((records, shard) => {
    for (const record of records) {
      for (const change of record.feed ?? []) {
        const id = entryId(change);
        const known = byKey.get(id);
        const shards = known?.shards ?? new Set<number>();
        shards.add(shard);
        byKey.delete(id); // re-inserted last: the map keeps each key at its latest position
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
  return [...byKey.values()];
}

/** Whether the entry's value is the store's (records written before revisions, see above), not its record's. */
export const storeValued = ({ entry, shards, rev }: DerivedEntry) => entry.kind === "binding" && shards.size > 1 && rev === undefined;

/** The ids of the entries a later change of their key, at a higher store revision (`storeRevs`, by key), supersedes. */
export const supersededBy = (derived: readonly DerivedEntry[], storeRevs: ReadonlyMap<string, number>) =>
  new Set(derived.flatMap((d) => (d.rev !== undefined && (storeRevs.get(d.entry.key) ?? 0) > d.rev ? [entryId(d.entry)] : [])));

/** The derived entries with revisions that `actual` leaves out (superseded ones may be: see `supersededBy`). */
export const leftOut = (derived: readonly DerivedEntry[], actual: readonly CutEntry[]) => {
  const present = new Set(actual.map(entryId));
  return derived.filter((d) => d.rev !== undefined && !present.has(entryId(d.entry)));
};

/**
 * Why `actual` (a cut's entries, across its versions, in order) is not what its records give, or undefined. An entry
 * in `superseded` may be left out (it was served, or will be, at a later revision); carried, it is checked as any.
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
    if (superseded.has(entryId(want.entry)) && (!got || got.kind !== kind || got.key !== key)) continue;
    if (!got) return `leaves out ${kind} ${key} of shard ${shard}'s record ${seq}`;
    if (got.kind !== kind || got.key !== key || got.shard !== shard || got.seq !== seq) {
      return `carries ${got.kind} ${got.key} from shard ${got.shard}'s record ${got.seq} where the cut's next change is ${kind} ${key} of shard ${shard}'s record ${seq}`;
    }
    if (!storeValued(want) && canonicalJson(got.value) !== canonicalJson(want.entry.value)) {
      return `entry ${kind} ${key} does not carry the value of shard ${shard}'s record ${seq}`;
    }
    index++;
  }
  const extra = actual[index];
  return extra ? `carries ${extra.kind} ${extra.key} beyond the cut's changes (a repeat, or no change of its records)` : undefined;
}
