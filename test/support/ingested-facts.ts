/**
 * Facts as ingestion publishes them, for the tests of how they travel to the applier: one source's facts about
 * numbered SIMs (`imsiPrefix` and the number), and a tenant with those SIMs registered.
 */
import { createTenantWithAdminKey, ingestedEvent, readDevice, registerDevice, type Ports } from "@simroot/core";

export function ingestedFacts(sourceId: string, imsiPrefix: string, ipOf: (n: number) => string) {
  let serial = 0;
  const imsiOf = (n: number) => `${imsiPrefix}${String(n).padStart(10, "0")}`;
  /** A fact as ingestion publishes it: every fact of one call shares the request id. */
  const fact = (tenantId: string, requestId: string, type: string, device: Record<string, string>, data: Record<string, unknown>) =>
    ingestedEvent(
      { tenantId, actor: `source:${sourceId}`, requestId },
      sourceId,
      "simroot",
      {
        type,
        dedupeKey: `${sourceId}-${++serial}`,
        occurredAt: new Date(Date.UTC(2026, 10, 22, 8, 0, 0, serial)).toISOString(),
        device,
        sourceType: type,
        data,
      } as never,
      new Date(),
    );
  /** SIM `n` attached, at `ipOf(n)`. */
  const attach = (tenantId: string, requestId: string, n: number) =>
    fact(tenantId, requestId, "sim.attached", { imsi: imsiOf(n) }, { bearer: "cellular", ipv4: ipOf(n) });
  /** A tenant with SIMs 0 to `count - 1` registered: their device ids, in order. */
  const tenantWithDevices = async (ports: Ports, name: string, count: number) => {
    const { tenant } = await createTenantWithAdminKey(ports, name);
    const ctx = { tenantId: tenant.id, actor: "system:test", requestId: "req_setup" };
    const ids = await Promise.all(
      Array.from({ length: count }, async (_, n) => (await registerDevice(ports, ctx, { imsi: imsiOf(n) })).value.id),
    );
    return { tenantId: tenant.id, ids };
  };
  return { imsiOf, fact, attach, tenantWithDevices };
}

/** The address a device holds on its cellular session, as the store has it. */
export const attachedIp = async (ports: Ports, tenantId: string, deviceId: string) =>
  (await readDevice(ports, tenantId, deviceId))?.device.identity.sessions.cellular?.ipv4;
