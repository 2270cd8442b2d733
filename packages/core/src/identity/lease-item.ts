/**
 * The items of IP leases (lease.ts), apart from their queries: what the history reader of the audit stream writes
 * (outbox.ts), so that its function carries no Query (its grants are what its code sends).
 */
import type { TableNames } from "../config.ts";
import type { LeaseEdge } from "../ledger/change.ts";

export const leasePartition = (tenantId: string, address: string) => `L#${tenantId}#${address}`;
/**
 * At one instant an end sorts before a start: the address changes hands. One item per session's edge: the bearer is in
 * the key, so two bearers' sessions on one address ending at once (a detach naming no bearer) leave an end each
 * (review 126: one end was kept, and the other session read as open for ever).
 */
export const leaseSortKey = (at: string, edge: "start" | "end", deviceId: string, bearer: string) =>
  `${at}#${edge === "end" ? "0" : "1"}${edge}#${deviceId}#${bearer}`;

/**
 * The lease item of one edge, as the history reader writes it from the committed record that carries the edge (outbox.ts):
 * outside the commit's transaction (1 write unit, not 2), put again harmlessly when a stream batch is read again.
 */
export function leaseItem(tables: Pick<TableNames, "identity">, tenantId: string, deviceId: string, lease: LeaseEdge) {
  const { address, at, edge, bearer } = lease;
  return {
    TableName: tables.identity,
    Item: { pk: leasePartition(tenantId, address), sk: leaseSortKey(at, edge, deviceId, bearer), deviceId, address, at, edge, bearer },
  };
}
