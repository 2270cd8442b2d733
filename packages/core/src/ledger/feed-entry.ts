import type { TableNames } from "../config.ts";
import type { TransactItem } from "../store/transaction.ts";
import type { FeedEntry } from "./change.ts";

/** How long feed entries are kept; a PEP further behind than this must take a snapshot. */
export const feedRetentionSeconds = 7 * 24 * 60 * 60;

export const feedPartition = (tenantId: string) => `T#${tenantId}`;
export const feedSortKey = (version: number, index: number) => `${String(version).padStart(12, "0")}#${String(index).padStart(4, "0")}`;

export function feedItem(tables: TableNames, tenantId: string, version: number, index: number, entry: FeedEntry, now: string): TransactItem {
  return {
    Put: {
      TableName: tables.feed,
      Item: {
        pk: feedPartition(tenantId),
        sk: feedSortKey(version, index),
        version,
        kind: entry.kind,
        key: entry.key,
        value: entry.value,
        time: now,
        expiresAt: Math.floor(Date.parse(now) / 1000) + feedRetentionSeconds,
      },
    },
  };
}
