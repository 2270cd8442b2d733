import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { PutCommand, TransactWriteCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { SimrootError } from "../error.ts";

type TransactItems = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]["TransactItems"]>;
export type TransactItem = TransactItems[number];

/**
 * What to throw when the condition of the item at `index` failed; `undefined` keeps the
 * generic conflict. Conditional writes are the concurrency primitive; a failed one becomes
 * a typed domain error.
 */
export type ConditionFailure = (index: number) => SimrootError | undefined;

/**
 * The store was busy rather than refusing: throttled, a transaction in progress on an item, or
 * (DynamoDB Local only, under load) a lock wait that timed out. Retried as contention.
 */
export const busy = (error: unknown) => {
  const { name, message, $metadata } = (error ?? {}) as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  return (
    [
      "ThrottlingException",
      "RequestLimitExceeded",
      "TransactionInProgressException",
      "InternalServerError",
      "ProvisionedThroughputExceededException",
    ].includes(name ?? "") ||
    ($metadata?.httpStatusCode ?? 0) >= 500 ||
    /waiting for a lock/.test(message ?? "")
  );
};

/**
 * Writes all items atomically (TransactWriteItems, at most 100 actions). One put alone is atomic
 * by itself and is sent as a conditional PutItem: DynamoDB bills a transaction's writes twice
 * (a fold that changes nothing visible still rewrites its device item, 2 units instead of 4).
 */
export async function writeTransaction(
  db: DynamoDBDocumentClient,
  items: readonly TransactItem[],
  onConditionFailed: ConditionFailure = () => undefined,
): Promise<void> {
  const [only] = items;
  if (items.length === 1 && only?.Put) return putOne(db, only.Put, onConditionFailed);
  try {
    await db.send(new TransactWriteCommand({ TransactItems: [...items] }));
  } catch (error) {
    if (!(error instanceof TransactionCanceledException)) {
      if (busy(error)) throw new SimrootError("store.conflict", "conflict", "The store was busy with the record; retry", { cause: error });
      throw error;
    }
    const reasons = error.CancellationReasons ?? [];
    // Another transaction held an item: contention, which the caller retries like a conflict.
    if (reasons.length > 0 && reasons.every((reason) => ["None", "TransactionConflict"].includes(reason.Code ?? "None"))) {
      throw new SimrootError("store.conflict", "conflict", "The record is being changed concurrently; retry", { cause: error });
    }
    const failed = reasons.findIndex((reason) => reason.Code === "ConditionalCheckFailed");
    if (failed >= 0) {
      throw (
        onConditionFailed(failed) ??
        new SimrootError("store.conflict", "conflict", "The record changed concurrently; retry", { cause: error })
      );
    }
    throw new SimrootError("store.transaction_failed", "unavailable", "The store refused the write; retry", {
      cause: error,
      detail: { reasons: reasons.map((reason) => reason.Code ?? "None") },
    });
  }
}

async function putOne(db: DynamoDBDocumentClient, put: NonNullable<TransactItem["Put"]>, onConditionFailed: ConditionFailure) {
  try {
    await db.send(new PutCommand(put));
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === "ConditionalCheckFailedException") {
      throw (
        onConditionFailed(0) ?? new SimrootError("store.conflict", "conflict", "The record changed concurrently; retry", { cause: error })
      );
    }
    // A transaction in progress on the item, or the store busy: contention, retried like a conflict.
    if (name === "TransactionConflictException" || busy(error)) {
      throw new SimrootError("store.conflict", "conflict", "The store was busy with the record; retry", { cause: error });
    }
    throw error;
  }
}
