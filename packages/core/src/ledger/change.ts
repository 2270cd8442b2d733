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
  /** The typed error for a failed condition on `writes[index]`; `undefined` keeps a generic conflict. */
  readonly onConditionFailed?: (index: number) => SimrootError | undefined;
}

/** Where a committed change landed: the sequence of its first audit record and its feed version. */
export interface Committed {
  readonly sequence: number;
  readonly version: number;
}
