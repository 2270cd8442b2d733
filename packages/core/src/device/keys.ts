import type { IdentifierKind } from "./identifiers.ts";

/** Item keys of the identity table; each access pattern is named in platform/tables.ts. */
export const deviceKey = (tenantId: string, deviceId: string) => ({ pk: `D#${tenantId}#${deviceId}`, sk: "device" });

export const deviceListKey = (tenantId: string, deviceId: string) => ({
  gsi1pk: `T#${tenantId}#device`,
  gsi1sk: deviceId,
});

/** An alias item makes an identifier unique within its tenant and resolves it to the device. */
export const aliasKey = (tenantId: string, kind: IdentifierKind, value: string) => ({
  pk: `A#${tenantId}#${kind}#${value}`,
  sk: "alias",
});

/** Which device holds an IP address in the tenant's private APN/DNN right now. */
export const bindingKey = (tenantId: string, address: string) => ({ pk: `B#${tenantId}#${address}`, sk: "binding" });

/** Lists a tenant's current bindings (the feed snapshot reads them). */
export const bindingListKey = (tenantId: string, address: string) => ({ gsi1pk: `T#${tenantId}#binding`, gsi1sk: address });

/** A revoked device's marker: written once, when it is revoked (terminal), so a snapshot lists revocations first in O(revoked). */
export const revokedKey = (tenantId: string, deviceId: string) => ({ pk: `R#${tenantId}#${deviceId}`, sk: "revoked" });
export const revokedListKey = (tenantId: string, deviceId: string) => ({ gsi1pk: `T#${tenantId}#revoked`, gsi1sk: deviceId });
