/**
 * One cut's feed entries, derived from the shard records it covers. The sequencer writes them; the verifier, and a
 * sequencer about to adopt a version found past the head, derive them again and compare. One entry per key: its
 * last change, at that change's position (shards in order, each shard's records in sequence order). A key written
 * on several shards within one cut has no order between them: its entry is placed by the last of those shards, and
 * a binding's value is then the store's, read when the cut is sequenced (an address moved between devices whose ids
 * hash apart).
 */
import { canonicalJson } from "./chain.ts";
import type { FeedVersionRecord } from "./feed-version.ts";

export type CutEntry = FeedVersionRecord["entries"][number];
export interface CutRecord {
  readonly seq: number;
  readonly feed?: readonly { readonly kind: string; readonly key: string; readonly value: Record<string, unknown> | null }[];
}
export interface DerivedEntry {
  readonly entry: CutEntry;
  /** The shards whose records in the cut change the key. */
  readonly shards: ReadonlySet<number>;
}

/** The cut's entries from each shard's records in it (index = shard, records in sequence order). */
export function cutEntries(perShard: readonly (readonly CutRecord[])[]): DerivedEntry[] {
  const byKey = new Map<string, { entry: CutEntry; shards: Set<number> }>();
  perShard.forEach((records, shard) => {
    for (const record of records) {
      for (const change of record.feed ?? []) {
        const id = `${change.kind}|${change.key}`;
        const shards = byKey.get(id)?.shards ?? new Set<number>();
        shards.add(shard);
        byKey.delete(id); // re-inserted last: the map keeps each key at its latest position
        byKey.set(id, { entry: { kind: change.kind, key: change.key, value: change.value, shard, seq: record.seq }, shards });
      }
    }
  });
  return [...byKey.values()];
}

/** Whether the entry's value is the store's (see above), not its record's. */
export const storeValued = ({ entry, shards }: DerivedEntry) => entry.kind === "binding" && shards.size > 1;

/** Why `actual` (a cut's entries, across its versions, in order) is not what its records give, or undefined. */
export function cutMismatch(derived: readonly DerivedEntry[], actual: readonly CutEntry[]): string | undefined {
  for (let index = 0; index < Math.max(derived.length, actual.length); index++) {
    const want = derived[index];
    const got = actual[index];
    if (!want) return `carries ${got!.kind} ${got!.key} beyond the cut's changes (a repeat, or no change of its records)`;
    if (!got) return `leaves out ${want.entry.kind} ${want.entry.key} of shard ${want.entry.shard}'s record ${want.entry.seq}`;
    const { kind, key, shard, seq } = want.entry;
    if (got.kind !== kind || got.key !== key || got.shard !== shard || got.seq !== seq) {
      return `carries ${got.kind} ${got.key} from shard ${got.shard}'s record ${got.seq} where the cut's next change is ${kind} ${key} of shard ${shard}'s record ${seq}`;
    }
    if (!storeValued(want) && canonicalJson(got.value) !== canonicalJson(want.entry.value)) {
      return `entry ${kind} ${key} does not carry the value of shard ${shard}'s record ${seq}`;
    }
  }
  return undefined;
}
