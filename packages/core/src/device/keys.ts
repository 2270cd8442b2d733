import { listStripe, listStripes } from "../store/stripe.ts";
import type { IdentifierKind } from "./identifiers.ts";

/** Item keys of the identity table; each access pattern is named in platform/tables.ts. */
export const deviceKey = (tenantId: string, deviceId: string) => ({ pk: `D#${tenantId}#${deviceId}`, sk: "device" });

/**
 * The tenant-wide listings of the identity table's `byTenant` index (devices, revocations, IP bindings) are striped
 * over `listStripes` index partitions by a hash of the listed key. One partition of an index takes at most 1,000 write
 * units a second, and an index that cannot keep up throttles the writes to the table itself (DynamoDB's "GSI back
 * pressure"): a re-attach storm of 2,000 changes/s on one tenant writes ~2,000 binding copies a second, 4,000 units
 * inside the commit's transaction. Over 16 stripes that is ~250 a stripe. Readers read every stripe
 * (`listingPartitions`); where the stripe falls is the writer's choice alone, so the hash may change without moving data.
 */

export type Listing = "device" | "binding" | "revoked";

const listPartition = (tenantId: string, listing: Listing, stripe: number) => `T#${tenantId}#${listing}#${String(stripe).padStart(2, "0")}`;

/**
 * Every partition a listing's items may be under: first the one partition items were listed under before the listings
 * were striped (an item moves to its stripe when next written), then the stripes.
 */
export const listingPartitions = (tenantId: string, listing: Listing): readonly string[] => [
  `T#${tenantId}#${listing}`,
  ...Array.from({ length: listStripes }, (_, stripe) => listPartition(tenantId, listing, stripe)),
];

export const deviceListKey = (tenantId: string, deviceId: string) => ({
  gsi1pk: listPartition(tenantId, "device", listStripe(deviceId)),
  gsi1sk: deviceId,
});

/** An alias item makes an identifier unique within its tenant and resolves it to the device. */
export const aliasKey = (tenantId: string, kind: IdentifierKind, value: string) => ({
  pk: `A#${tenantId}#${kind}#${value}`,
  sk: "alias",
});

/** The mark of an eUICC whose profiles were reported on a device registered without its EID (identity/apply-fact.ts). */
export const euiccKey = (tenantId: string, eid: string) => ({ pk: aliasKey(tenantId, "eid", eid).pk, sk: "euicc" });

/**
 * Which device holds an IP address in the tenant's private APN/DNN right now. Binding items are kept in `listStripes`
 * partitions of the identity table itself, by a hash of the address, sorted by address: the feed snapshot lists them by
 * querying those partitions (consistently), so an attach or a detach writes no index copy of its binding (2 write units
 * inside the commit's transaction, where an index listed them until 2026-12-03). A release leaves a tombstone (no
 * `deviceId`) that keeps the address's revision for some days (the table's TTL, `bindingTombstoneSeconds`); the
 * snapshot's query leaves tombstones out.
 */
export const bindingKey = (tenantId: string, address: string) => ({ pk: bindingPartition(tenantId, listStripe(address)), sk: address });

/** The table partitions a tenant's bindings are kept in (one per stripe). */
export const bindingPartition = (tenantId: string, stripe: number) => `B#${tenantId}#${String(stripe).padStart(2, "0")}`;
export const bindingPartitions = (tenantId: string): readonly string[] =>
  Array.from({ length: listStripes }, (_, stripe) => bindingPartition(tenantId, stripe));

/**
 * Where an address's binding was kept before 2026-12-03: its own partition, listed through the `byTenant` index. Read
 * when the address has no item where bindings are kept now; the next write of the address moves it (the old item is
 * deleted in the same transaction, conditional on its revision).
 */
export const legacyBindingKey = (tenantId: string, address: string) => ({ pk: `B#${tenantId}#${address}`, sk: "binding" });

/** A revoked device's marker: written once, when it is revoked (terminal), so a snapshot lists revocations first in O(revoked). */
export const revokedKey = (tenantId: string, deviceId: string) => ({ pk: `R#${tenantId}#${deviceId}`, sk: "revoked" });
export const revokedListKey = (tenantId: string, deviceId: string) => ({
  gsi1pk: listPartition(tenantId, "revoked", listStripe(deviceId)),
  gsi1sk: deviceId,
});
