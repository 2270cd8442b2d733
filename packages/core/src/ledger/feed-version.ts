/**
 * Feed versions: the tenant's feed is one scalar, monotonically increasing version, whatever
 * the number of ledger shards. Each feed version record names the vector of shard sequences
 * it covers and the shard heads' hashes at that cut, and chains by hash to the previous one,
 * so the trail (the shard chains and the version chain over their heads) stays tamper-evident.
 */
import * as z from "zod";
import { chainHash } from "./chain.ts";

export const feedVersionEntrySchema = z.object({
  kind: z.string(),
  key: z.string(),
  value: z.record(z.string(), z.unknown()).nullable(),
  shard: z.number().int(),
  seq: z.number().int(),
});

export const feedVersionSchema = z.object({
  version: z.number().int().positive(),
  tenantId: z.string(),
  time: z.string(),
  /** Per shard, the last sequence this version covers. */
  vector: z.array(z.number().int().min(0)),
  /** Per shard, the hash of the audit record at `vector[shard]` (the genesis hash for 0). */
  shardHashes: z.array(z.string()),
  entries: z.array(feedVersionEntrySchema),
  prevHash: z.string(),
  hash: z.string(),
});
export type FeedVersionRecord = z.output<typeof feedVersionSchema>;

/** The tenant's feed head (control table): the newest version, its vector and its hash. */
export const feedHeadKey = (tenantId: string) => ({ pk: `T#${tenantId}`, sk: "feed" });
/** The partition (audit table) of the tenant's feed version records, by version. */
export const feedPartition = (tenantId: string) => `T#${tenantId}#feed`;
export const feedSortKey = (version: number) => String(version).padStart(12, "0");

export const unhashedVersion = ({ hash: _hash, ...record }: FeedVersionRecord) => record;
export const versionHash = (record: Omit<FeedVersionRecord, "hash">) => chainHash(record.prevHash, record);
