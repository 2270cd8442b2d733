/**
 * Idempotency records for POST requests that carry an `Idempotency-Key`: the first request
 * claims the key, its response is kept for 24 hours, and a retry with the same key and body
 * gets that response again instead of acting twice. A claim is a lease: a request that crashed
 * mid-way stops blocking its retries once `idempotencyLeaseSeconds` have passed, and the instances' clock margin
 * (`idempotencyLeaseSkewSeconds`): the retry acts.
 */
import { DeleteCommand, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import type { Ports } from "../ports.ts";

export const idempotencyRetentionSeconds = 24 * 60 * 60;
/** Longer than any request may run (the API Lambda's timeout is 30 s). */
export const idempotencyLeaseSeconds = 60;
/**
 * How far apart two instances' clocks may be for a lease to hold: a lease is taken over only once it ran out this long
 * ago by the taker's clock (review 105: the claimer's lease is on its own clock, and 35 s between two instances let a
 * retry act again while the first request still ran). A crashed request's retry waits its lease and this.
 */
export const idempotencyLeaseSkewSeconds = 120;

export interface StoredResponse {
  readonly status: number;
  /** The body as it was (answers kept before 2026-12-05, or of a caller with no bearer token). */
  readonly body?: string;
  /** The body sealed with a key only the caller's own credential derives (api idempotency.ts). */
  readonly sealedBody?: string;
  readonly headers: Readonly<Record<string, string>>;
}

export type Claim =
  | { readonly kind: "claimed" }
  | { readonly kind: "in_progress" }
  | { readonly kind: "mismatch" }
  | { readonly kind: "completed"; readonly response: StoredResponse };

const recordKey = (scope: string, key: string) => ({ pk: `IDEM#${scope}#${key}`, sk: "idempotency" });

export async function claimIdempotencyKey(ports: Ports, scope: string, key: string, fingerprint: string): Promise<Claim> {
  const now = Math.floor(ports.now().getTime() / 1000);
  try {
    await ports.db.send(
      new PutCommand({
        TableName: ports.tables.control,
        Item: {
          ...recordKey(scope, key),
          fingerprint,
          state: "pending",
          leaseUntil: now + idempotencyLeaseSeconds,
          expiresAt: now + idempotencyRetentionSeconds,
        },
        // Free, expired, or claimed by a request whose lease ran out (it crashed or timed out).
        ConditionExpression: "attribute_not_exists(pk) OR expiresAt < :now OR (#state = :pending AND leaseUntil < :stale)",
        ExpressionAttributeNames: { "#state": "state" },
        ExpressionAttributeValues: { ":now": now, ":stale": now - idempotencyLeaseSkewSeconds, ":pending": "pending" },
      }),
    );
    return { kind: "claimed" };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: recordKey(scope, key), ConsistentRead: true }),
  );
  if (!Item) return claimIdempotencyKey(ports, scope, key, fingerprint);
  if (Item.fingerprint !== fingerprint) return { kind: "mismatch" };
  if (Item.state !== "complete") return { kind: "in_progress" };
  return { kind: "completed", response: Item.response as StoredResponse };
}

export async function completeIdempotencyKey(
  ports: Ports,
  scope: string,
  key: string,
  fingerprint: string,
  response: StoredResponse,
): Promise<void> {
  await ports.db.send(
    new PutCommand({
      TableName: ports.tables.control,
      Item: {
        ...recordKey(scope, key),
        fingerprint,
        state: "complete",
        response,
        expiresAt: Math.floor(ports.now().getTime() / 1000) + idempotencyRetentionSeconds,
      },
    }),
  );
}

/** The answer stored for `key` when its request completed with this `fingerprint` (and is still kept), with no claim. */
export async function completedAnswer(ports: Ports, scope: string, key: string, fingerprint: string): Promise<StoredResponse | undefined> {
  const { Item } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.control, Key: recordKey(scope, key), ConsistentRead: true }),
  );
  const kept = Item && Item.state === "complete" && Item.fingerprint === fingerprint;
  return kept && Number(Item.expiresAt) >= Math.floor(ports.now().getTime() / 1000) ? (Item.response as StoredResponse) : undefined;
}

/** Lets a retry act again (the first attempt failed in a way worth retrying). */
export async function releaseIdempotencyKey(ports: Ports, scope: string, key: string): Promise<void> {
  await ports.db.send(new DeleteCommand({ TableName: ports.tables.control, Key: recordKey(scope, key) }));
}
