/**
 * The order label actions keep on a device (review 115): EventBridge delivers a device's events in any order, so each
 * label key remembers the revision of the change whose event last acted on it (one item per key), and the revision at
 * which a person last relabelled the device through the API (one item per device). A label action on an event
 * of an earlier change leaves the key alone. Kept `labelOrderSeconds`: past EventBridge's retries (24 h) and the bus's
 * redrives of a week.
 */
import type { TableNames } from "../config.ts";
import type { TransactItem } from "../store/transaction.ts";

export const labelOrderSeconds = 7 * 24 * 60 * 60;

/** The partition of a device's label order (automation table). */
export const labelOrderPartition = (tenantId: string, deviceId: string) => `T#${tenantId}#labels#${deviceId}`;
/**
 * The item marking the revision at which a person last relabelled the device (`#` is in no label key: `labelKeySchema`).
 * A relabel through the API replaces the labels whole: every key is then as the person set or kept it, so one revision
 * stands for all of them (one attribute, whatever the number of keys or relabels; a mark per key grew with every key
 * ever set, up to DynamoDB's item limit, past which the device could not be relabelled: review 154).
 */
export const personSetKey = (tenantId: string, deviceId: string) => ({ pk: labelOrderPartition(tenantId, deviceId), sk: "#person" });

/** The write, inside a person's relabel at `revision`, that marks the device's labels as set at it. */
export function personSetWrite(
  tables: Pick<TableNames, "automation">,
  tenantId: string,
  deviceId: string,
  revision: number,
  now: Date,
): TransactItem {
  return {
    Put: {
      TableName: tables.automation,
      Item: { ...personSetKey(tenantId, deviceId), revision, expiresAt: Math.floor(now.getTime() / 1000) + labelOrderSeconds },
    },
  };
}
