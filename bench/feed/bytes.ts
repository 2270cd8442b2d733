/**
 * Bytes on the wire for one device change, in tenants of each size, against resending the
 * full snapshot (what an OPA-style bundle poll costs when anything changed).
 */
import { createTenantWithAdminKey, type FeedResponse } from "@simroot/core";
import type { LocalRuntime } from "@simroot/local/runtime";
import { seedFleet } from "./fleet.ts";

async function get(runtime: LocalRuntime, token: string, path: string, init: RequestInit = {}) {
  const response = await runtime.app.request(path, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers },
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path} answered ${response.status}: ${text}`);
  return { bytes: Buffer.byteLength(text), json: JSON.parse(text) as FeedResponse & Record<string, unknown> };
}

export async function measureBytes(runtime: LocalRuntime, size: number) {
  const { tenant, token: admin } = await createTenantWithAdminKey(runtime.ports, `fleet-${size}`);
  const started = performance.now();
  const devices = await seedFleet(runtime.ports, tenant.id, size);
  const seeded = performance.now() - started;
  const pep = (await get(runtime, admin, "/v1/keys", { method: "POST", body: JSON.stringify({ name: "edge", role: "pep" }) })).json
    .token as string;

  let snapshotBytes = 0;
  let entries = 0;
  let version = 0;
  let cursor: string | undefined;
  do {
    const page = await get(runtime, pep, `/v1/feed?limit=5000${cursor ? `&cursor=${cursor}` : ""}`);
    snapshotBytes += page.bytes;
    entries += page.json.entries.length;
    version = page.json.signed.head.version;
    cursor = page.json.next;
  } while (cursor);

  const target = devices[Math.floor(size / 2)]!;
  await get(runtime, admin, `/v1/devices/${target.id}/revoke`, { method: "POST", body: JSON.stringify({ reason: "bench" }) });
  const delta = await get(runtime, pep, `/v1/feed?since=${version}`);
  if (delta.json.entries.length !== 1) throw new Error(`expected one delta entry, got ${delta.json.entries.length}`);
  const publicKeyPem = (await get(runtime, pep, "/v1/feed/keys")).json.keys as unknown as { publicKeyPem: string }[];
  return {
    size,
    snapshotBytes,
    snapshotEntries: entries,
    deltaBytes: delta.bytes,
    seededSeconds: seeded / 1000,
    pepToken: pep,
    tenantId: tenant.id,
    publicKeyPem: publicKeyPem[0]!.publicKeyPem,
  };
}
