import type { SimrootError } from "../error.ts";
import type { DomainEvent } from "../event/event.ts";
import type { TransactItem } from "../store/transaction.ts";

/** One thing enforcement points must learn: an item of their replicated view, set or removed. */
export interface FeedChange {
  /** What kind of thing (`device`, `binding`, `policy`, `grant`, ...). */
  readonly kind: string;
  /** Its key within the kind (a device id, `ip:<apn>:<address>`, ...). */
  readonly key: string;
  /** The new value, or `null` when it was removed. */
  readonly value: Record<string, unknown> | null;
  /**
   * For a key that changes on several ledger shards (an IP binding moving between devices whose ids hash apart): the
   * revision of the key's store item this change wrote. Writes of the item are conditional on it, so revisions order
   * the key's changes across shards (cut.ts), whatever order the sequencer reads the shards in.
   */
  readonly rev?: number;
  /**
   * A device's labels before this change, on a change that moved them (a relabel): a feed narrowed to a label selector
   * (feed/scope.ts) then knows whether the device was in its scope, and tells a PEP of a device out of it only when it
   * may hold it. A change without it left the labels as they were.
   */
  readonly labelsBefore?: Readonly<Record<string, string>>;
}

/**
 * One edge of an IP lease: a device started or stopped holding an address at `at` (on `bearer`). History, not state:
 * the change's last audit record carries it (hashed with the record), and the history reader writes the lease item from the
 * committed record (identity/lease.ts), outside the commit's transaction.
 */
export interface LeaseEdge {
  readonly address: string;
  readonly at: string;
  readonly edge: "start" | "end";
  readonly bearer: string;
}

/**
 * A state change as a verb describes it: the writes, the events that say what happened
 * (each becomes a hash-chained audit record) and what enforcement points must learn.
 * The ledger commits all of it in one DynamoDB transaction.
 */
export interface Change {
  readonly tenantId: string;
  readonly writes: readonly TransactItem[];
  readonly events: readonly DomainEvent[];
  readonly feed?: readonly FeedChange[];
  /** The IP lease edges the change implies, for the subject's device (recorded with the feed entries, on the last record). */
  readonly leases?: readonly LeaseEdge[];
  /** The typed error for a failed condition on `writes[index]`; `undefined` keeps a generic conflict. */
  readonly onConditionFailed?: (index: number) => SimrootError | undefined;
  /**
   * The writes (indices into `writes`, each a Put) whose item must name where the change's feed entries are recorded:
   * the ledger adds `by: { shard, seq }`, the position of the record that carries them. An IP binding's item does, so
   * that the sequencer can tell which change wrote its store revision (cut.ts).
   */
  readonly positioned?: readonly number[];
  /** The ledger shard to commit on; by default the shard of the first event's subject (tenant-level subjects: 0). */
  readonly shard?: number;
}

/** Where a committed change landed: its shard, the sequence of its first audit record there, and its feed version. */
export interface Committed {
  readonly shard: number;
  readonly sequence: number;
  /** The feed version that carries it; undefined when it was not sequenced within a few seconds (a later version will carry it). */
  readonly version: number | undefined;
}
