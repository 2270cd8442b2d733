/**
 * How a snapshot reads its listings: the revocations, then every device, then the IP bindings, each over the partitions
 * it is striped across (device/keys.ts: 17 of the `byTenant` index a listing; the bindings' 16 of the table after
 * those). Items are used in that order, since a cursor is one partition and a key in it, but whatever a read brought is
 * kept for the page until it is used: a partition read whole is not read again in the page.
 *
 * A page reads the partition it is at and the next ones of the same listing that may hold more, 4 at once, each for the
 * rest of the page (a large tenant's page reads at most 3 pages ahead), twice as many after a batch that found nothing.
 * The snapshot's first page also reads, in the same round trip, every other partition of the group (the index's, then
 * the table's) for a few items (`probeLimit`): an empty or small tenant, whose snapshot is that one page, finds its
 * listings in two round trips where reading one listing after another took 12 (4 partitions, 8, then the rest), and a
 * large tenant pays about one read unit a partition once a snapshot.
 *
 * The table's partitions are read only once the index's are read whole: an address moving from the index's listing to
 * where bindings are kept now while the snapshot pages is listed in the one read before the move or in the one read
 * after it (or both, with the same or a later value), never in neither. The listings are otherwise read in any order,
 * all after the snapshot's version: what the index had not caught up with by then the replay carries
 * (snapshot-replay.ts), and what changed after it the deltas do (a device listed both revoked and not, read either side
 * of its revocation, stays revoked at the PEP: revocation is terminal).
 */
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { bindingPartitions, listingPartitions, type Listing } from "../device/keys.ts";
import type { Ports } from "../ports.ts";

/** Then the replay of the latest feed versions (snapshot-replay.ts): what the eventually consistent index may not list yet. */
export type SnapshotPhase = "revoked" | "devices" | "bindings" | "replay";
export type ListingPhase = Exclude<SnapshotPhase, "replay">;
export const phases: readonly SnapshotPhase[] = ["revoked", "devices", "bindings", "replay"];
/** The byTenant listing each phase reads (striped over several index partitions: device/keys.ts). */
const phaseListing: Record<ListingPhase, Listing> = { revoked: "revoked", devices: "device", bindings: "binding" };

/** A partition a phase lists: of the `byTenant` index, or (`table`) of the identity table itself. */
export interface ListedPartition {
  readonly key: string;
  readonly table: boolean;
}

/**
 * The bindings are kept in partitions of the table (device/keys.ts); those written before 2026-12-03 and not since are
 * listed by the index, read first (see above).
 */
export const phasePartitions = (tenantId: string, phase: SnapshotPhase): readonly ListedPartition[] =>
  phase === "replay"
    ? []
    : [
        ...listingPartitions(tenantId, phaseListing[phase]).map((key) => ({ key, table: false })),
        ...(phase === "bindings" ? bindingPartitions(tenantId).map((key) => ({ key, table: true })) : []),
      ];

/** Partitions read at once, each for the rest of the page: a large tenant's page reads at most this many pages ahead. */
export const stripesAtOnce = 4;
/** At most this many at once, after batches that found nothing. */
const maxStripesAtOnce = 16;
/** The fewest items a first page's read of a partition ahead asks for. */
const probeMin = 10;

/** What a first page's read of a partition ahead asks for: the page's `room` shared by the `probed`, at least a few. */
const probeLimit = (room: number, probed: number) => Math.max(1, Math.min(room, Math.max(probeMin, Math.ceil(room / probed))));

/** Where a snapshot's listing continues: a phase, its partition (`stripe`), and the key after which to read it. */
export interface ListingPosition {
  readonly phase: ListingPhase;
  readonly stripe: number;
  readonly start: Record<string, unknown> | undefined;
}

interface Slot {
  readonly phase: ListingPhase;
  readonly stripe: number;
  readonly partition: ListedPartition;
  /** Items read and not used yet, in order. */
  readonly buffer: Record<string, unknown>[];
  /** Where the partition's next read starts (the key the last read ended at; the cursor's for the first slot). */
  next: Record<string, unknown> | undefined;
  /** Read at least once in this page. */
  read: boolean;
  /** Read to its end. */
  ended: boolean;
  /** Where a cursor that continues this partition starts: after the last item used (its beginning when none). */
  start: Record<string, unknown> | undefined;
}

/** The key a read resumes after `item` with (an index key is the item's table and index keys). */
const keyOf = (slot: Slot, item: Record<string, unknown>) =>
  slot.partition.table ? { pk: item.pk, sk: item.sk } : { pk: item.pk, sk: item.sk, gsi1pk: item.gsi1pk, gsi1sk: item.gsi1sk };

/** One page's reader of the listings, from `from` on (`read` the partitions it needs, then `take` what the page uses). */
export function snapshotListing(ports: Ports, tenantId: string, from: ListingPosition, probing: boolean) {
  const slots: Slot[] = [];
  for (const phase of phases.slice(phases.indexOf(from.phase))) {
    for (const [stripe, partition] of phasePartitions(tenantId, phase).entries()) {
      if (phase === from.phase && stripe < from.stripe) continue;
      const start = phase === from.phase && stripe === from.stripe ? from.start : undefined;
      slots.push({ phase: phase as ListingPhase, stripe, partition, buffer: [], next: start, read: false, ended: false, start });
    }
  }
  /** The first slot not used whole (undefined: the listings are done). */
  const current = () => slots.findIndex((slot) => !slot.ended || slot.buffer.length > 0);

  const query = async (slot: Slot, limit: number) => {
    const result = await ports.db.send(
      new QueryCommand(
        slot.partition.table
          ? {
              // Where bindings are kept now: the table's own partitions, read consistently; release tombstones left out.
              TableName: ports.tables.identity,
              KeyConditionExpression: "pk = :p",
              FilterExpression: "attribute_exists(deviceId)",
              ExpressionAttributeValues: { ":p": slot.partition.key },
              ConsistentRead: true,
              ExclusiveStartKey: slot.next,
              Limit: limit,
            }
          : {
              TableName: ports.tables.identity,
              IndexName: "byTenant",
              KeyConditionExpression: "gsi1pk = :p",
              ExpressionAttributeValues: { ":p": slot.partition.key },
              ExclusiveStartKey: slot.next,
              Limit: limit,
            },
      ),
    );
    const items = result.Items ?? [];
    slot.buffer.push(...items);
    slot.next = result.LastEvaluatedKey;
    slot.read = true;
    slot.ended = !result.LastEvaluatedKey;
    return items;
  };

  /** How many partitions that hold more the next read asks for the rest of the page (`stripesAtOnce`, doubling). */
  let ahead = stripesAtOnce;
  let lastKind: string | undefined;

  return {
    /**
     * Reads what the page needs next, at most `room` items of it (nothing when what was read already will do): the
     * partition the page is at and the next `ahead` - 1 of its group that may hold more, each for the rest of the page
     * (twice as many next time when they found nothing: an empty listing's partitions take a few round trips); on the
     * snapshot's first page also every partition of the group not read yet, a few items each.
     */
    async read(room: number): Promise<void> {
      const at = current();
      if (at === -1 || slots[at]!.buffer.length > 0) return;
      const { phase, partition } = slots[at]!;
      // Never carried into another listing, nor from the index's partitions to the table's: the partitions of one hold
      // about as many items as each other (spread by the same hash), not as those of another.
      const kind = `${phase}|${partition.table}`;
      if (kind !== lastKind) ahead = stripesAtOnce;
      lastKind = kind;
      const rest = slots.slice(at).filter((slot) => !slot.ended);
      const end = rest.findIndex((slot) => slot.partition.table !== partition.table);
      const group = end === -1 ? rest : rest.slice(0, end);
      const batch = group.filter((slot) => slot.phase === phase).slice(0, ahead);
      const probed = probing ? group.filter((slot) => !slot.read && !batch.includes(slot)) : [];
      const probe = probeLimit(room, probed.length);
      const found = await Promise.all([
        ...batch.map(async (slot) => (await query(slot, room)).length),
        ...probed.map(async (slot) => (await query(slot, probe)).length),
      ]);
      const batchFound = found.slice(0, batch.length).reduce((sum, count) => sum + count, 0);
      ahead = batchFound === 0 ? Math.min(ahead * 2, maxStripesAtOnce) : stripesAtOnce;
    },

    /** Up to `room` items, in the listings' order, of what was read, each with its phase. */
    take(room: number): { phase: ListingPhase; item: Record<string, unknown> }[] {
      const taken: { phase: ListingPhase; item: Record<string, unknown> }[] = [];
      for (let at = Math.max(0, current()); at < slots.length; at++) {
        const slot = slots[at]!;
        const used = slot.buffer.splice(0, room - taken.length);
        for (const item of used) taken.push({ phase: slot.phase, item });
        if (used.length > 0) slot.start = keyOf(slot, used.at(-1)!);
        if (slot.buffer.length > 0) break;
        // Used up to where it was read: a cursor resumes where the last read ended (past the tombstones it left out).
        if (slot.read) slot.start = slot.next;
        if (!slot.ended) break;
      }
      return taken;
    },

    /** Where the page stands: undefined once every listing was used whole. */
    position(): ListingPosition | undefined {
      const at = current();
      if (at === -1) return undefined;
      const { phase, stripe, start } = slots[at]!;
      return { phase, stripe, start };
    },
  };
}
