import { GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import type { FeedSigner } from "../feed/signer.ts";
import { auditRetentionDays } from "../config.ts";
import { feedSortKey } from "../ledger/feed-version.ts";
import type { Ports } from "../ports.ts";

type CheckpointPorts = Pick<Ports, "db" | "tables" | "now">;
import { isSimrootError, SimrootError } from "../error.ts";
import { queryAll } from "../store/query-all.ts";
import { readArchiveCheckpoint } from "./archive.ts";
import { chainPointBytes, signatureHolds, storedChainPoint, verifyAuditChain, type ChainPoint, type ChainVerification } from "./audit.ts";

export const auditCheckpointKey = (tenantId: string) => ({ pk: `T#${tenantId}`, sk: "audit-checkpoint" });

interface Checkpoint extends ChainPoint {
  readonly signature: string;
  readonly keyId: string;
}

const checkpointBytes = (tenantId: string, point: ChainPoint) => chainPointBytes("audit-checkpoint", tenantId, point);

const numbers = (value: unknown): value is number[] => Array.isArray(value) && value.every((n) => typeof n === "number");
const strings = (value: unknown): value is string[] => Array.isArray(value) && value.every((n) => typeof n === "string");

async function readCheckpoint(ports: CheckpointPorts, tenantId: string): Promise<Checkpoint | undefined> {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: auditCheckpointKey(tenantId), ConsistentRead: true }),
  );
  if (!Item || typeof Item.seq !== "number" || typeof Item.hash !== "string" || typeof Item.signature !== "string") return undefined;
  if (!numbers(Item.vector) || !strings(Item.shardHashes) || !numbers(Item.base)) return undefined;
  return {
    seq: Item.seq,
    hash: Item.hash,
    vector: Item.vector,
    shardHashes: Item.shardHashes,
    base: Item.base,
    signature: Item.signature,
    keyId: String(Item.keyId),
  };
}

const signedBy = (signer: FeedSigner, tenantId: string, checkpoint: Checkpoint) =>
  signatureHolds(checkpointBytes(tenantId, checkpoint), signer.publicKeyPem, checkpoint.signature);

/** Where each signed checkpoint is also kept, by version: what the archiver binds an archived range to (archive.ts). */
const historyKey = (tenantId: string, seq: number) => ({ pk: `T#${tenantId}`, sk: `audit-checkpoint#${feedSortKey(seq)}` });

/**
 * Stores the point a valid walk reached, unless a checkpoint at or past it is already there, and
 * keeps it by version for as long as the records it covers (plus a day).
 */
async function saveCheckpoint(ports: CheckpointPorts, signer: FeedSigner, tenantId: string, point: ChainPoint) {
  const signature = await signer.sign(checkpointBytes(tenantId, point));
  const fields = {
    seq: point.seq,
    hash: point.hash,
    vector: point.vector,
    shardHashes: point.shardHashes,
    base: point.base,
    signature,
    keyId: signer.keyId,
    publicKeyPem: signer.publicKeyPem,
    at: ports.now().toISOString(),
  };
  await ports.db.send(
    new PutCommand({
      TableName: ports.tables.control,
      Item: {
        ...historyKey(tenantId, point.seq),
        ...fields,
        expiresAt: Math.floor(ports.now().getTime() / 1000) + (auditRetentionDays() + 1) * 86_400,
      },
    }),
  );
  try {
    await ports.db.send(
      new PutCommand({
        TableName: ports.tables.control,
        Item: { ...auditCheckpointKey(tenantId), ...fields },
        ConditionExpression: "attribute_not_exists(pk) OR seq < :seq",
        ExpressionAttributeValues: { ":seq": point.seq },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/**
 * Verifies the tenant's chain from its signed checkpoint (the whole chain when `full`, when
 * there is none yet, or when it was signed by a key no longer in use). Reads only: the
 * checkpoint stays where it is (`moveAuditCheckpoint` moves it). A checkpoint signed by the
 * current key that does not verify is reported as a break: someone wrote it without the key.
 */
export async function verifyAudit(
  ports: CheckpointPorts,
  signer: FeedSigner,
  tenantId: string,
  options: { readonly full?: boolean } = {},
): Promise<ChainVerification> {
  const { reached: _reached, start: _start, ...verification } = await walkFromCheckpoint(ports, signer, tenantId, options.full ?? false);
  return verification;
}

/**
 * Verifies what is new since the signed checkpoint, as `verifyAudit` does, then signs the point a
 * valid walk reached and moves the checkpoint there: what the audit archiver does each run, and an
 * admin's `POST /v1/audit/checkpoint`. A GET never does (review 73: a viewer's verification wrote it).
 */
export async function moveAuditCheckpoint(ports: CheckpointPorts, signer: FeedSigner, tenantId: string): Promise<ChainVerification> {
  const { reached, start, ...verification } = await walkFromCheckpoint(ports, signer, tenantId, false);
  if (verification.valid && reached && reached.seq > (start?.seq ?? 0)) await saveCheckpoint(ports, signer, tenantId, reached);
  return verification;
}

/**
 * The signed checkpoints kept by version (`historyKey`), oldest first (the newest alone when `newestOnly`), each
 * signature checked: points every walk must pass through. One signed by a key no longer trusted vouches for nothing and
 * is left out; one naming the current key whose signature does not hold was written without the key: `forged`.
 */
async function signedHistory(
  ports: CheckpointPorts,
  signer: FeedSigner,
  tenantId: string,
  newestOnly: boolean,
): Promise<{ readonly points: ChainPoint[]; readonly forged?: ChainPoint }> {
  const query = {
    TableName: ports.tables.control,
    KeyConditionExpression: "pk = :p AND begins_with(sk, :prefix)",
    ExpressionAttributeValues: { ":p": `T#${tenantId}`, ":prefix": "audit-checkpoint#" },
    ConsistentRead: true,
  };
  const items = newestOnly
    ? ((await ports.db.send(new QueryCommand({ ...query, ScanIndexForward: false, Limit: 1 }))).Items ?? [])
    : await queryAll(ports.db, query);
  const points: ChainPoint[] = [];
  for (const item of items) {
    const { point, retired, publicKeyPem, signature } = storedChainPoint(item, signer);
    if (signatureHolds(checkpointBytes(tenantId, point), publicKeyPem, signature)) points.push(point);
    else if (!retired) return { points, forged: point };
  }
  return { points };
}

const forgedPoint = (point: ChainPoint, reason: string): ChainVerification => ({
  valid: false,
  checked: 0,
  from: point.seq,
  lastSeq: point.seq,
  lastHash: point.hash,
  brokenAt: { seq: point.seq, reason },
});

/**
 * Walks from the newest signed point (the whole chain when `full`), through every signed point after where it starts
 * (review 125: the whole walk recomputed what a rewrite had recomputed, and checked no signed point; an older signed
 * checkpoint written back in place of the newest moved every later walk, and the next signature, to before a rewrite).
 */
async function walkFromCheckpoint(
  ports: CheckpointPorts,
  signer: FeedSigner,
  tenantId: string,
  full: boolean,
): Promise<ChainVerification & { readonly reached?: ChainPoint; readonly start?: ChainPoint }> {
  const checkpoint = await readCheckpoint(ports, tenantId);
  // What was archived was verified when it was (archive.ts); DynamoDB's TTL removes it later, so no walk starts before it.
  let archived: ChainPoint | undefined;
  try {
    archived = await readArchiveCheckpoint(ports, signer, tenantId);
  } catch (error) {
    if (!isSimrootError(error)) throw error;
    return { valid: false, checked: 0, from: 0, lastSeq: 0, lastHash: "", brokenAt: { seq: 0, reason: error.message } };
  }
  const signed: ChainPoint[] = [];
  if (checkpoint && checkpoint.keyId === signer.keyId) {
    if (!signedBy(signer, tenantId, checkpoint))
      return forgedPoint(checkpoint, "the audit checkpoint is not signed by the control plane's key");
    const { signature: _signature, keyId: _keyId, ...point } = checkpoint;
    signed.push(point);
  }
  // A walk from the newest signed point passes no other; a whole walk passes them all.
  const history = await signedHistory(ports, signer, tenantId, !full);
  if (history.forged)
    return forgedPoint(
      history.forged,
      `the audit checkpoint kept at version ${history.forged.seq} is not signed by the control plane's key`,
    );
  signed.push(...history.points);
  const after = signed.filter((point) => point.seq >= (archived?.seq ?? 0));
  const newest = after.reduce<ChainPoint | undefined>(
    (best, point) => (best === undefined || point.seq > best.seq ? point : best),
    undefined,
  );
  const start = full ? archived : (newest ?? archived);
  const vouched = new Map(after.filter((point) => point.seq > (start?.seq ?? 0)).map((point) => [point.seq, point.hash]));
  const walked = await verifyAuditChain(ports, tenantId, start, { signed: vouched });
  // A chain cut back below a signed point (its last versions deleted, the head moved back) never reaches it.
  if (walked.valid && newest !== undefined && newest.seq > walked.reached.seq) {
    return {
      ...walked,
      valid: false,
      brokenAt: {
        seq: walked.reached.seq + 1,
        reason: `the chain ends at feed version ${walked.reached.seq}, before its signed checkpoint at ${newest.seq}`,
      },
      ...(start ? { start } : {}),
    };
  }
  return { ...walked, ...(start ? { start } : {}) };
}

/**
 * The first signed checkpoint at or after feed version `seq` (from the kept history), its signature
 * checked (the current key, or a retired one the operator still trusts); undefined when there is none.
 */
export async function signedPointAtOrAfter(
  ports: CheckpointPorts,
  signer: FeedSigner,
  tenantId: string,
  seq: number,
): Promise<ChainPoint | undefined> {
  const { Items } = await ports.db.send(
    new QueryCommand({
      TableName: ports.tables.control,
      KeyConditionExpression: "pk = :p AND sk BETWEEN :from AND :to",
      ExpressionAttributeValues: {
        ":p": `T#${tenantId}`,
        ":from": historyKey(tenantId, seq).sk,
        ":to": "audit-checkpoint#~",
      },
      Limit: 1,
      ConsistentRead: true,
    }),
  );
  const item = Items?.[0];
  if (!item) return undefined;
  const { point, publicKeyPem, signature } = storedChainPoint(item, signer);
  if (!signatureHolds(checkpointBytes(tenantId, point), publicKeyPem, signature)) {
    throw new SimrootError(
      "audit.checkpoint_invalid",
      "internal",
      `The audit checkpoint at version ${point.seq} is not signed by a trusted key`,
    );
  }
  return point;
}
