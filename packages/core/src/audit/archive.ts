import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { SimrootError } from "../error.ts";
import type { FeedSigner } from "../feed/signer.ts";
import { feedSortKey, feedVersionsAfter } from "../ledger/feed-version.ts";
import { readFeedHead, settleHead } from "../ledger/sequencer.ts";
import { shardCount } from "../ledger/shard.ts";
import type { Ports } from "../ports.ts";

/** What archiving touches: the store, nothing else (no ledger, no bus). */
/** What the archiver uses; with a feed notifier, it announces a head it moved forward (`settleHead`). */
export type ArchivePorts = Pick<Ports, "db" | "tables" | "now"> & Partial<Pick<Ports, "feedNotifier">>;
import {
  chainPointBytes,
  followVersions,
  genesisPoint,
  signatureHolds,
  storedChainPoint,
  verifyAuditChain,
  type ChainPoint,
} from "./audit.ts";
import { moveAuditCheckpoint, signedPointAtOrAfter } from "./checkpoint.ts";

/** Where archived objects go (S3 in AWS: `s3-archive.ts`; a folder locally). */
export interface ArchiveStore {
  put(key: string, body: string): Promise<void>;
}

export const archiveCheckpointKey = (tenantId: string) => ({ pk: `T#${tenantId}`, sk: "audit-archive" });

/** Days before a record's expiry by which it is archived. */
export const archiveLeadDays = 30;
/** Feed versions per archived object (and per walk: one run may write several). */
const versionsPerObject = 1_000;

export interface ArchivedPoint extends ChainPoint {
  /** The time of the last archived feed version. */
  readonly through: string;
}

const archiveBytes = (tenantId: string, point: ArchivedPoint) =>
  chainPointBytes("audit-archive", tenantId, point, { through: point.through });

/**
 * The tenant's archive checkpoint, its signature checked: undefined when nothing was archived,
 * an error when it was not signed by this control plane's key (someone wrote it without the key).
 */
export async function readArchiveCheckpoint(ports: ArchivePorts, signer: FeedSigner, tenantId: string): Promise<ArchivedPoint | undefined> {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: archiveCheckpointKey(tenantId), ConsistentRead: true }),
  );
  if (!Item) return undefined;
  const { point, retired, publicKeyPem, signature } = storedChainPoint(Item, signer);
  const archived: ArchivedPoint = { ...point, through: String(Item.through) };
  if (!signatureHolds(archiveBytes(tenantId, archived), publicKeyPem, signature)) {
    throw new SimrootError(
      "audit.archive_checkpoint_invalid",
      "internal",
      retired && publicKeyPem === undefined
        ? `The audit archive checkpoint is signed by key ${String(Item.keyId)}, not this control plane's: ` +
            "after a key rotation, list the old public key in SIMROOT_FEED_RETIRED_PUBLIC_KEYS to trust what it signed"
        : "The audit archive checkpoint is not signed by this control plane's key",
    );
  }
  return archived;
}

async function saveArchiveCheckpoint(ports: ArchivePorts, signer: FeedSigner, tenantId: string, from: number, point: ArchivedPoint) {
  const signature = await signer.sign(archiveBytes(tenantId, point));
  await ports.db.send(
    new PutCommand({
      TableName: ports.tables.control,
      Item: {
        ...archiveCheckpointKey(tenantId),
        ...point,
        signature,
        keyId: signer.keyId,
        publicKeyPem: signer.publicKeyPem,
        at: ports.now().toISOString(),
      },
      // Moves only from where this run started: two archivers never both move it.
      ConditionExpression: from === 0 ? "attribute_not_exists(pk)" : "seq = :from",
      ...(from === 0 ? {} : { ExpressionAttributeValues: { ":from": from } }),
    }),
  );
}

/**
 * The newest feed version after `after` that may be archived now, at most `versionsPerObject` on:
 * it expires within the lead (by its stored TTL; a version written before TTLs were, by its time
 * plus the retention), and it ends its sequencing run. The versions of one run share a vector and a
 * time, and a walk may only stop between runs (the next walk starts from the vector it reached).
 */
export async function archivableUntil(
  ports: ArchivePorts,
  tenantId: string,
  after: number,
  expiringBy: number,
  retentionSeconds: number,
  perObject = versionsPerObject,
) {
  const found: { version: number; time: string; vector: string }[] = [];
  let cursor: Record<string, unknown> | undefined;
  let complete = false;
  // Up to the head: a version past it (written, the head not yet moved) is not the trail's until the head reaches it.
  const upTo = (await readFeedHead(ports.db, ports.tables, tenantId, shardCount)).version;
  while (!complete && found.length <= perObject) {
    const page = await feedVersionsAfter(ports.db, ports.tables, tenantId, after, ["version", "time", "expiresAt", "vector"], {
      limit: 200,
      cursor,
      upTo,
    });
    for (const item of page.items) {
      const time = String(item.time);
      const expiresAt = expiryOf(item, retentionSeconds);
      // Not expiring yet: neither is anything after it (versions expire in order), and a run shares one expiry.
      if (expiresAt > expiringBy) {
        complete = true;
        break;
      }
      found.push({ version: Number(item.version), time, vector: JSON.stringify(item.vector) });
      if (found.length > perObject) break;
    }
    if (found.length > perObject) break;
    cursor = page.cursor;
    // The last version there is ends its run (a run is written in one transaction).
    if (!cursor) complete = true;
  }
  if (complete) return found.at(-1);
  // Cut short by the object's size: end at the last run that ends inside it.
  for (let index = found.length - 2; index >= 0; index--) if (found[index]!.vector !== found[index + 1]!.vector) return found[index];
  throw new Error(`a sequencing run of tenant ${tenantId} is longer than ${perObject} versions`);
}

export interface ArchiveResult {
  readonly tenantId: string;
  /** Objects written by this run. */
  readonly objects: readonly string[];
  readonly records: number;
  readonly versions: number;
  /** The archive checkpoint after the run (undefined: nothing archived yet). */
  readonly checkpoint: ArchivedPoint | undefined;
  /** Seconds until the oldest version not archived yet expires (undefined: none is waiting). */
  readonly marginSeconds: number | undefined;
}

export interface ArchiveOptions {
  readonly retentionDays: number;
  readonly leadDays?: number;
  /** Wall-clock time (epoch ms) after which no new object is started: the function's timeout, less a margin. */
  readonly deadline?: number;
}

/** The object name of versions `from`+1 to `to` of a tenant. */
export const archiveObjectKey = (tenantId: string, from: number, to: number) =>
  `audit/${tenantId}/${feedSortKey(from + 1)}-${feedSortKey(to)}.jsonl`;

/**
 * Archives what of the tenant's trail expires within `leadDays`: verified, written, then the
 * checkpoint moved. A trail that does not verify is not archived (the error names where it broke).
 */
export async function archiveAudit(
  ports: ArchivePorts,
  signer: FeedSigner,
  store: ArchiveStore,
  tenantId: string,
  options: ArchiveOptions,
): Promise<ArchiveResult> {
  const leadDays = options.leadDays ?? archiveLeadDays;
  if (options.retentionDays <= leadDays)
    throw new Error(`the audit retention (${options.retentionDays} days) must exceed the archive lead (${leadDays})`);
  const expiringBy = Math.floor(ports.now().getTime() / 1000) + leadDays * 86_400;
  // A head left one behind by a sequencing that stopped would hold the archive (it stops at the head) until the
  // tenant's next change, however long that is: the records past it would expire unarchived.
  const settled = await settleHead(ports.db, ports.tables, tenantId);
  // Announced as the sequencing that stopped would have: PEPs on the push channel poll only when told.
  // Best effort (PEPs renew their heads anyway): a failed publish never fails the archive run.
  if (settled) await ports.feedNotifier?.publish({ tenantId, version: settled.version }).catch(() => {});
  let checkpoint = await readArchiveCheckpoint(ports, signer, tenantId);
  // Verify what is new since the signed audit checkpoint, which signs (and keeps) the point reached:
  // every archived range is then bound to a signed checkpoint at or after it.
  const verified = await moveAuditCheckpoint(ports, signer, tenantId);
  if (!verified.valid) throw chainBroken(verified.brokenAt?.reason ?? "the trail does not verify", verified.brokenAt);
  const objects: string[] = [];
  let records = 0;
  let versions = 0;
  while (Date.now() < (options.deadline ?? Number.POSITIVE_INFINITY)) {
    const start: ChainPoint = checkpoint ?? genesisPoint();
    const last = await archivableUntil(ports, tenantId, start.seq, expiringBy, options.retentionDays * 86_400);
    if (!last) break;
    const lines: string[] = [JSON.stringify({ from: { tenantId, ...start } })];
    let walkedRecords = 0;
    let walkedVersions = 0;
    const walk = await verifyAuditChain(ports, tenantId, start, {
      until: last.version,
      keep: (item, where) => {
        if (where === "feed") walkedVersions++;
        else walkedRecords++;
        lines.push(JSON.stringify(where === "feed" ? { version: item } : { record: item }));
      },
    });
    if (!walk.valid) throw chainBroken(walk.brokenAt?.reason ?? "the trail does not verify", walk.brokenAt);
    // The range must lead to a signed checkpoint: a range rewritten with its hashes recomputed (no key needed) does not.
    const anchor = await signedPointAtOrAfter(ports, signer, tenantId, walk.reached.seq);
    if (!anchor) throw chainBroken(`no signed audit checkpoint at or after feed version ${walk.reached.seq}`);
    const unbound = await followVersions(ports, tenantId, walk.reached, anchor.seq, anchor.hash);
    if (unbound) throw chainBroken(unbound);
    const next: ArchivedPoint = { ...walk.reached, through: last.time };
    lines.push(JSON.stringify({ to: { tenantId, ...next } }));
    const key = archiveObjectKey(tenantId, start.seq, next.seq);
    await store.put(key, `${lines.join("\n")}\n`);
    try {
      await saveArchiveCheckpoint(ports, signer, tenantId, start.seq, next);
    } catch (error) {
      // Another archiver moved it first: its object covers the same versions; stop here.
      if (error instanceof ConditionalCheckFailedException) break;
      throw error;
    }
    objects.push(key);
    records += walkedRecords;
    versions += walkedVersions;
    checkpoint = next;
  }
  const marginSeconds = await oldestExpiry(ports, tenantId, checkpoint?.seq ?? 0, options.retentionDays * 86_400).then((expiresAt) =>
    expiresAt === undefined ? undefined : expiresAt - Math.floor(ports.now().getTime() / 1000),
  );
  return { tenantId, objects, records, versions, checkpoint, marginSeconds };
}

const chainBroken = (reason: string, brokenAt?: unknown) =>
  new SimrootError("audit.chain_broken", "internal", `The audit trail does not verify, so it is not archived: ${reason}`, {
    detail: { brokenAt },
  });

/** When the first version after `after` expires (epoch seconds), if there is one. */
async function oldestExpiry(ports: ArchivePorts, tenantId: string, after: number, retentionSeconds: number) {
  const { items } = await feedVersionsAfter(ports.db, ports.tables, tenantId, after, ["time", "expiresAt"], { limit: 1 });
  const item = items[0];
  if (!item) return undefined;
  return expiryOf(item, retentionSeconds);
}

/** A feed version's expiry (epoch seconds): its stored TTL, or for one written before TTLs were, its time plus the retention. */
const expiryOf = (item: Record<string, unknown>, retentionSeconds: number) =>
  typeof item.expiresAt === "number" ? item.expiresAt : Math.floor(Date.parse(String(item.time)) / 1000) + retentionSeconds;

/** Every tenant's id, from the control table's tenant list (the byTenant index under `tenants`). */
export async function* tenantIds(ports: Pick<Ports, "db" | "tables">) {
  let cursor: Record<string, unknown> | undefined;
  do {
    const page = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.control,
        IndexName: "byTenant",
        KeyConditionExpression: "gsi1pk = :t",
        ExpressionAttributeValues: { ":t": "tenants" },
        ProjectionExpression: "gsi1sk",
        ExclusiveStartKey: cursor,
      }),
    );
    for (const item of page.Items ?? []) yield String(item.gsi1sk);
    cursor = page.LastEvaluatedKey;
  } while (cursor);
}

/**
 * One scheduled run over every tenant (an hourly Lambda in AWS, a timer locally), in a random order,
 * until the deadline. A tenant whose trail cannot be archived does not stop the others; the run
 * then fails, naming them, so the function's error alarm fires long before the lead is used up.
 * Each result says how long its oldest unarchived version has left (`marginSeconds`), and the run says the least of
 * every tenant's, those that failed included (`marginSeconds` of the run, and `detail.marginSeconds` of a failed run's
 * error: review 101, a failing tenant's margin was never measured and the run's others' were not printed): the whole
 * retention when nothing waits, and undefined when the run does not know it (review 104: a tenant whose margin could
 * not be read, or left out at the deadline, was taken for one with nothing waiting).
 */
export async function archiveAllTenants(
  ports: ArchivePorts,
  signer: FeedSigner,
  store: ArchiveStore,
  options: ArchiveOptions,
): Promise<{ results: ArchiveResult[]; marginSeconds: number | undefined }> {
  const results: ArchiveResult[] = [];
  const failed: { tenantId: string; error: string; marginSeconds: number | undefined | "unknown" }[] = [];
  const tenants: string[] = [];
  for await (const tenantId of tenantIds(ports)) tenants.push(tenantId);
  // In a new order each run: a run cut short by its deadline does not always leave the same tenants out.
  for (let index = tenants.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1));
    [tenants[index], tenants[other]] = [tenants[other]!, tenants[index]!];
  }
  let reached = 0;
  for (const tenantId of tenants) {
    if (Date.now() >= (options.deadline ?? Number.POSITIVE_INFINITY)) break;
    reached++;
    try {
      results.push(await archiveAudit(ports, signer, store, tenantId, options));
    } catch (error) {
      failed.push({
        tenantId,
        error: String((error as Error)?.message ?? error),
        marginSeconds: await unarchivedMargin(ports, signer, tenantId, options.retentionDays).catch(() => "unknown" as const),
      });
    }
  }
  const measured = [...results, ...failed].map(({ marginSeconds }) => marginSeconds);
  const known = measured.filter((margin): margin is number => typeof margin === "number");
  const marginSeconds =
    reached < tenants.length || measured.includes("unknown")
      ? undefined
      : known.length > 0
        ? Math.min(...known)
        : options.retentionDays * 86_400;
  if (failed.length > 0) {
    throw new SimrootError("audit.archive_failed", "internal", `The audit archive failed for ${failed.length} tenant(s)`, {
      detail: { failed, ...(marginSeconds === undefined ? {} : { marginSeconds }) },
    });
  }
  return { results, marginSeconds };
}

/**
 * How long a tenant that could not be archived has before its oldest unarchived version expires: from its archive
 * checkpoint, or from its first version when the checkpoint cannot be read (its signature refused, the store failing).
 */
async function unarchivedMargin(ports: ArchivePorts, signer: FeedSigner, tenantId: string, retentionDays: number) {
  const checkpoint = await readArchiveCheckpoint(ports, signer, tenantId).catch(() => undefined);
  const expiresAt = await oldestExpiry(ports, tenantId, checkpoint?.seq ?? 0, retentionDays * 86_400);
  return expiresAt === undefined ? undefined : expiresAt - Math.floor(ports.now().getTime() / 1000);
}
