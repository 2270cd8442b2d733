/**
 * Signed audit checkpoints: verification that costs O(new records) per call. After a walk
 * that found the trail valid, the control plane signs (with the feed key) the point it
 * reached (the feed version, its hash, and the shard heads it covers) and stores it; the next verification checks that signature
 * and walks only the records after it, each of which must chain from the signed hash. Someone
 * who can write the store but does not hold the key cannot move a checkpoint past records he
 * altered. What lies before the checkpoint was verified when the checkpoint was made; an
 * admin re-walks the whole chain with `?full=true` (which also renews the checkpoint): the whole
 * retained chain, from the archive checkpoint once records were archived (archive.ts).
 */
import { createPublicKey, verify } from "node:crypto";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import type { FeedSigner } from "../feed/signer.ts";
import type { Ports } from "../ports.ts";
import { isSimrootError } from "../error.ts";
import { readArchiveCheckpoint } from "./archive.ts";
import { chainPointBytes, verifyAuditChain, type ChainPoint, type ChainVerification } from "./audit.ts";

export const auditCheckpointKey = (tenantId: string) => ({ pk: `T#${tenantId}`, sk: "audit-checkpoint" });

interface Checkpoint extends ChainPoint {
  readonly signature: string;
  readonly keyId: string;
}

const checkpointBytes = (tenantId: string, point: ChainPoint) => chainPointBytes("audit-checkpoint", tenantId, point);

const numbers = (value: unknown): value is number[] => Array.isArray(value) && value.every((n) => typeof n === "number");
const strings = (value: unknown): value is string[] => Array.isArray(value) && value.every((n) => typeof n === "string");

async function readCheckpoint(ports: Ports, tenantId: string): Promise<Checkpoint | undefined> {
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

const signedBy = (signer: FeedSigner, tenantId: string, checkpoint: Checkpoint) => {
  try {
    return verify(
      null,
      checkpointBytes(tenantId, checkpoint),
      createPublicKey(signer.publicKeyPem),
      Buffer.from(checkpoint.signature, "base64"),
    );
  } catch {
    return false;
  }
};

/** Stores the point a valid walk reached, unless a checkpoint at or past it is already there. */
async function saveCheckpoint(ports: Ports, signer: FeedSigner, tenantId: string, point: ChainPoint) {
  const signature = await signer.sign(checkpointBytes(tenantId, point));
  try {
    await ports.db.send(
      new PutCommand({
        TableName: ports.tables.control,
        Item: {
          ...auditCheckpointKey(tenantId),
          seq: point.seq,
          hash: point.hash,
          vector: point.vector,
          shardHashes: point.shardHashes,
          base: point.base,
          signature,
          keyId: signer.keyId,
          at: ports.now().toISOString(),
        },
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
 * there is none yet, or when it was signed by a key no longer in use), then moves the
 * checkpoint to the end of a valid walk. A checkpoint signed by the current key that does not
 * verify is reported as a break: someone wrote it without the key.
 */
export async function verifyAuditIncrementally(
  ports: Ports,
  signer: FeedSigner,
  tenantId: string,
  options: { readonly full?: boolean } = {},
): Promise<ChainVerification> {
  const checkpoint = options.full ? undefined : await readCheckpoint(ports, tenantId);
  // What was archived was verified when it was (archive.ts); DynamoDB's TTL removes it later, so no walk starts before it.
  let archived: ChainPoint | undefined;
  try {
    archived = await readArchiveCheckpoint(ports, signer, tenantId);
  } catch (error) {
    if (!isSimrootError(error)) throw error;
    return { valid: false, checked: 0, from: 0, lastSeq: 0, lastHash: "", brokenAt: { seq: 0, reason: error.message } };
  }
  let start: ChainPoint | undefined = archived;
  if (checkpoint && checkpoint.keyId === signer.keyId) {
    if (!signedBy(signer, tenantId, checkpoint)) {
      const reason = "the audit checkpoint is not signed by the control plane's key";
      return {
        valid: false,
        checked: 0,
        from: checkpoint.seq,
        lastSeq: checkpoint.seq,
        lastHash: checkpoint.hash,
        brokenAt: { seq: checkpoint.seq, reason },
      };
    }
    const { signature: _signature, keyId: _keyId, ...point } = checkpoint;
    if (point.seq >= (archived?.seq ?? 0)) start = point;
  }
  const { reached, ...verification } = await verifyAuditChain(ports, tenantId, start);
  if (verification.valid && reached.seq > (start?.seq ?? 0)) await saveCheckpoint(ports, signer, tenantId, reached);
  return verification;
}
