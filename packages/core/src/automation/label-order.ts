/**
 * The order label actions keep on a device (review 115): EventBridge delivers a device's events in any order, so each
 * label key remembers the revision of the change whose event last acted on it (one item per key), and the revision at
 * which a person last set it through the API (one item per device, an attribute per key). A label action on an event
 * of an earlier change leaves the key alone. Kept `labelOrderSeconds`: past EventBridge's retries (24 h) and the bus's
 * redrives of a week.
 */
import type { TableNames } from "../config.ts";
import type { TransactItem } from "../store/transaction.ts";

export const labelOrderSeconds = 7 * 24 * 60 * 60;

/** The partition of a device's label order (automation table). */
export const labelOrderPartition = (tenantId: string, deviceId: string) => `T#${tenantId}#labels#${deviceId}`;
/** The item of the keys a person set; `#` is in no label key (`labelKeySchema`). */
export const personSetKey = (tenantId: string, deviceId: string) => ({ pk: labelOrderPartition(tenantId, deviceId), sk: "#person" });
export const personSetAttribute = (key: string) => `k:${key}`;

/** The keys whose value `before` and `after` differ (set, changed or removed). */
export function changedKeys(before: Readonly<Record<string, string>>, after: Readonly<Record<string, string>>): string[] {
  return [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((key) => before[key] !== after[key]);
}

/**
 * The write, inside a person's relabel at `revision`, that marks `keys` as set at it: one item whatever the number of
 * keys (a transaction holds 100 actions, and a relabel may change 128 keys).
 */
export function personSetWrite(
  tables: Pick<TableNames, "automation">,
  tenantId: string,
  deviceId: string,
  keys: readonly string[],
  revision: number,
  now: Date,
): TransactItem {
  return {
    Update: {
      TableName: tables.automation,
      Key: personSetKey(tenantId, deviceId),
      UpdateExpression: `SET ${keys.map((_, index) => `#k${index} = :revision`).join(", ")}, expiresAt = :expires`,
      ExpressionAttributeNames: Object.fromEntries(keys.map((key, index) => [`#k${index}`, personSetAttribute(key)])),
      ExpressionAttributeValues: { ":revision": revision, ":expires": Math.floor(now.getTime() / 1000) + labelOrderSeconds },
    },
  };
}
