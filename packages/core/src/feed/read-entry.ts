/**
 * Feed entries as the control plane reads them from its versions, before serving them. Kept apart from wire.ts (its
 * schemas) so that what only publishes commits bundles no schema.
 */
import type { FeedEntry } from "./wire.ts";

/**
 * An entry as read from a version: a device's labels before the version's changes of it ride along where a change
 * moved them (ledger/change.ts `labelsBefore`), for narrowing the feed to a selector (scope.ts). Never served.
 */
export type ReadEntry = FeedEntry & { readonly labelsBefore?: Readonly<Record<string, string>> };

/** Entries as they are served (what the content hash covers): without what only the control plane reads. */
export const servedEntries = (entries: readonly ReadEntry[]): FeedEntry[] =>
  entries.some((entry) => entry.labelsBefore !== undefined)
    ? entries.map(({ labelsBefore: _labelsBefore, ...entry }) => entry)
    : (entries as FeedEntry[]);
