/**
 * Feed versions: the tenant's feed is one scalar, monotonically increasing version, whatever
 * the number of ledger shards. Each feed version record names the vector of shard sequences
 * it covers and the hashes of the shard heads that moved to reach that cut (the others are the
 * previous version's), and chains by hash to the previous one,
 * so the trail (the shard chains and the version chain over their heads) stays tamper-evident.
 */
import { type DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import type { TableNames } from "../config.ts";
import { deflatedJson, openDeflated } from "../store/deflated.ts";
import { chainHash } from "./chain.ts";

export const feedVersionEntrySchema = z.object({
  kind: z.string(),
  key: z.string(),
  value: z.record(z.string(), z.unknown()).nullable(),
  shard: z.number().int(),
  seq: z.number().int(),
  /** A device's labels before the cut's first change of it, when a change of the cut moved them (ledger/change.ts). */
  labelsBefore: z.record(z.string(), z.string()).optional(),
});

/** A stored version's entries inflate to at most this (a version holds at most ~150 KB of them: sequencer.ts). */
const maxEntriesBytes = 4 * 1024 * 1024;

/**
 * A version's entries as stored: deflated JSON (a binary attribute). At 2,000 changes/s on one tenant the version
 * records take the tenant's whole feed, ~1 MB/s of JSON, into one partition (1,000 write units a second at most);
 * deflated, the same entries take about a third of it (docs/write-path.md). The hash covers the entries themselves.
 */
export const storedEntries = (entries: readonly unknown[]): Uint8Array => deflatedJson(entries);

/** The entries of a stored version: inflated, or as they are (versions written before were not deflated). */
function openEntries(stored: unknown): unknown {
  if (!(stored instanceof Uint8Array)) return stored;
  // Not deflated JSON, too large or nested too deep: the schema refuses the bytes as they are.
  return openDeflated(stored, maxEntriesBytes) ?? stored;
}

export const feedVersionSchema = z.object({
  version: z.number().int().positive(),
  tenantId: z.string(),
  time: z.string(),
  /** Per shard, the last sequence this version covers. */
  vector: z.array(z.number().int().min(0)),
  /**
   * Per shard, the hash of the audit record at `vector[shard]` (the genesis hash for 0): written
   * whole by versions before `heads` (about 1 KB of 16 hashes, most of them repeated from the
   * version before).
   */
  shardHashes: z.array(z.string()).optional(),
  /**
   * The hash of the audit record at `vector[shard]` for each shard whose sequence moved since the
   * previous version (keyed by shard number); every other shard's is the previous version's.
   */
  heads: z.record(z.string(), z.string()).optional(),
  entries: z.preprocess(openEntries, z.array(feedVersionEntrySchema)),
  /**
   * The binding changes in this version's cut it does not carry, each with the record of a later change of the same
   * address (a higher store revision) that an earlier version carried already (see ledger/cut.ts): on the first
   * version of a run, absent when none.
   */
  left: z
    .array(
      z.object({
        key: z.string(),
        rev: z.number().int(),
        by: z.object({ shard: z.number().int().min(0), seq: z.number().int().positive() }),
      }),
    )
    .optional(),
  prevHash: z.string(),
  hash: z.string(),
});
export type FeedVersionRecord = z.output<typeof feedVersionSchema>;

/**
 * Every attribute of a version record its hash covers (a read to check it asks for these). A call marked pure, so that a
 * function that reads no version leaves the schema out of its bundle (infra/esbuild-plugins.mjs).
 */
export const feedVersionAttributes = /* @__PURE__ */ (() => Object.keys(feedVersionSchema.shape))();

/** The tenant's feed head (control table): the newest version, its vector and its hash. */
export const feedHeadKey = (tenantId: string) => ({ pk: `T#${tenantId}`, sk: "feed" });
/** The partition (audit table) of the tenant's feed version records, by version. */
export const feedPartition = (tenantId: string) => `T#${tenantId}#feed`;
export const feedSortKey = (version: number) => String(version).padStart(12, "0");

export const unhashedVersion = ({ hash: _hash, ...record }: FeedVersionRecord) => record;

/**
 * The shard heads' hashes at a version, from those at the version before: a version written whole
 * (`shardHashes`) names them all, a later one (`heads`) only those that moved.
 */
export const shardHashesAt = (record: Pick<FeedVersionRecord, "shardHashes" | "heads">, before: readonly string[]): string[] =>
  record.shardHashes ? [...record.shardHashes] : before.map((hash, shard) => record.heads?.[String(shard)] ?? hash);
export const versionHash = (record: Omit<FeedVersionRecord, "hash">) => chainHash(record.prevHash, record);

/**
 * One page of a tenant's feed version records after version `after`, oldest first, read
 * consistently, with only the named attributes.
 */
export async function feedVersionsAfter(
  db: DynamoDBDocumentClient,
  tables: Pick<TableNames, "audit">,
  tenantId: string,
  after: number,
  attributes: readonly string[],
  page: { readonly limit: number; readonly cursor?: Record<string, unknown>; readonly upTo?: number },
) {
  // DynamoDB refuses a BETWEEN whose bounds are reversed.
  if (page.upTo !== undefined && page.upTo <= after) return { items: [], cursor: undefined };
  const { Items, LastEvaluatedKey } = await db.send(
    new QueryCommand({
      TableName: tables.audit,
      ...(page.upTo === undefined
        ? {
            KeyConditionExpression: "pk = :p AND sk > :after",
            ExpressionAttributeValues: { ":p": feedPartition(tenantId), ":after": feedSortKey(after) },
          }
        : {
            KeyConditionExpression: "pk = :p AND sk BETWEEN :from AND :to",
            ExpressionAttributeValues: { ":p": feedPartition(tenantId), ":from": feedSortKey(after + 1), ":to": feedSortKey(page.upTo) },
          }),
      // Every name aliased: `time`, `left` and others are reserved words.
      ProjectionExpression: attributes.map((_, index) => `#a${index}`).join(", "),
      ExpressionAttributeNames: Object.fromEntries(attributes.map((name, index) => [`#a${index}`, name])),
      Limit: page.limit,
      ConsistentRead: true,
      ...(page.cursor ? { ExclusiveStartKey: page.cursor } : {}),
    }),
  );
  return { items: Items ?? [], cursor: LastEvaluatedKey };
}
