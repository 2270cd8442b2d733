import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { TransactWriteCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { SimrootError } from "../error.ts";

type TransactItems = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]["TransactItems"]>;
export type TransactItem = TransactItems[number];

/**
 * What to throw when the condition of the item at `index` failed; `undefined` keeps the
 * generic conflict. Conditional writes are the concurrency primitive; a failed one becomes
 * a typed domain error.
 */
export type ConditionFailure = (index: number) => SimrootError | undefined;

/** Writes all items atomically (TransactWriteItems, at most 100 actions). */
export async function writeTransaction(
  db: DynamoDBDocumentClient,
  items: readonly TransactItem[],
  onConditionFailed: ConditionFailure = () => undefined,
): Promise<void> {
  try {
    await db.send(new TransactWriteCommand({ TransactItems: [...items] }));
  } catch (error) {
    if (!(error instanceof TransactionCanceledException)) throw error;
    const reasons = error.CancellationReasons ?? [];
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
