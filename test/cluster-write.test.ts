/**
 * The write path and the feed across separate processes (as Lambda runs them) over one
 * DynamoDB Local: many writers on one tenant, IP bindings moving between devices of
 * different ledger shards, and a feed that every process serves alike.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  createTenantWithAdminKey,
  ingestedEvent,
  portsFor,
  shardOfSubject,
  verifyAuditChain,
  type DomainEvent,
  type FeedEntry,
  type Ports,
} from "@simroot/core";
import { readFeedHead, readShardHead } from "@simroot/core/ledger/sequencer";
import { startCluster, type Cluster, type Instance } from "./support/cluster.ts";

let cluster: Cluster;
let ports: Ports;
beforeAll(async () => {
  cluster = await startCluster({ endpoint: inject("dynamoEndpoint") });
  ports = portsFor(cluster.db, cluster.tables, { publish: async () => {} });
});
afterAll(() => cluster?.stop());

const imsiOf = (n: number) => `20801${String(n).padStart(10, "0")}`;

/** A PEP's view: entries applied in order, last writer wins per key. */
function applyEntries(view: Map<string, unknown>, entries: readonly FeedEntry[]) {
  for (const entry of entries) {
    if (entry.kind !== "device" && entry.kind !== "binding") continue;
    if (entry.value === null) view.delete(`${entry.kind}|${entry.key}`);
    else {
      // A stale fact is remembered (the device's revision moves) but changes nothing a PEP sees: no feed entry. Compare the rest.
      const { revision: _revision, ...value } = entry.value;
      view.set(`${entry.kind}|${entry.key}`, value);
    }
  }
  return view;
}

function attach(tenantId: string, imsi: string, address: string, n: number): DomainEvent {
  const ctx = { tenantId, actor: "source:src_cluster", requestId: `req_${n}` };
  const normalized = {
    type: "sim.attached",
    dedupeKey: `cluster-${n}`,
    occurredAt: new Date(Date.UTC(2026, 10, 22, 8, 0, 0, n)).toISOString(),
    device: { imsi },
    sourceType: "cluster",
    data: { bearer: "cellular", ipv4: address },
  };
  return ingestedEvent(ctx, "src_cluster", "simroot", normalized as never, new Date());
}

/**
 * `writers` processes apply facts on one tenant, every tenth delivered twice (to two writers), one for a SIM nobody
 * registered: every fact settles (never failed), the chains stay whole and the feed equals the store. `batch`: each
 * process applies its facts `batch` to a bus entry, as the applier takes a request's packed facts, `lanes` entries side
 * by side, as the applier applies a batch of its queue's messages in AWS.
 */
async function applyAcrossWriters(writers: number, batch?: number, lanes = 1) {
  const { tenant } = await createTenantWithAdminKey(ports, "cluster");
  const [first] = await cluster.startMany(1);
  const devices = 48;
  const ids: string[] = await first!.call("register", {
    tenantId: tenant.id,
    imsis: Array.from({ length: devices }, (_, n) => imsiOf(n)),
  });
  expect(new Set(ids.map((id) => shardOfSubject(id))).size).toBeGreaterThan(8);
  const instances: Instance[] = [first!, ...(await cluster.startMany(writers - 1))];

  // 16 addresses over 48 devices: each address moves between devices (and so between shards) many times.
  const facts = Array.from({ length: batch ? writers * Math.max(2, lanes) * batch : writers * 4 }, (_, n) =>
    attach(tenant.id, imsiOf((n * 7) % devices), `10.9.0.${n % 16}`, n),
  );
  // Every tenth fact also reaches a second writer (an at-least-once bus delivers it twice), plus one for a SIM nobody registered.
  const deliveries = facts.map((fact, n) => ({ fact, to: n % writers }));
  for (let n = 0; n < facts.length; n += 10) deliveries.push({ fact: facts[n]!, to: (n + 1) % writers });
  deliveries.push({ fact: attach(tenant.id, imsiOf(999), "10.9.1.1", 100_000), to: 0 });
  const outcomes = (
    await Promise.all(
      instances.map((instance, index) =>
        instance.call<string[]>("apply", { events: deliveries.filter((d) => d.to === index).map((d) => d.fact), batch, lanes }),
      ),
    )
  ).flat();
  const counted: Record<string, number> = {};
  for (const outcome of outcomes) counted[outcome] = (counted[outcome] ?? 0) + 1;
  expect(Object.keys(counted).filter((outcome) => !["applied", "duplicate", "stale", "parked"].includes(outcome))).toEqual([]);
  expect(counted.parked).toBe(1);
  expect(counted.applied).toBeGreaterThan(facts.length / 2);

  await instances[5 % writers]!.call("sequence", { tenantId: tenant.id });
  const verification = await verifyAuditChain(ports, tenant.id);
  expect(verification).toMatchObject({ valid: true });

  // Deltas from 0 (served by one process) replayed in order give what a snapshot (by another) lists.
  const deltas = await instances[3 % writers]!.call<{ version: number; entries: FeedEntry[] }>("deltas", {
    tenantId: tenant.id,
    since: 0,
  });
  const snapshot = await instances[7 % writers]!.call<{ version: number; entries: FeedEntry[] }>("snapshot", {
    tenantId: tenant.id,
    limit: 200,
  });
  expect(deltas.version).toBe(verification.lastSeq);
  expect(snapshot.version).toBe(deltas.version);
  const replayed = applyEntries(new Map(), deltas.entries);
  const listed = applyEntries(new Map(), snapshot.entries);
  expect([...replayed.keys()].filter((key) => key.startsWith("binding|")).sort()).toEqual(
    [...listed.keys()].filter((key) => key.startsWith("binding|")).sort(),
  );
  expect(Object.fromEntries(replayed)).toEqual(Object.fromEntries(listed));
}

describe("32 writer processes on one tenant", () => {
  it(
    "apply every fact (applied, duplicate, stale or parked, never failed), keep the chains whole and the feed equal to the store",
    {
      timeout: 1_500_000,
    },
    () => applyAcrossWriters(Number(process.env.CLUSTER_WRITERS ?? 32)),
  );
});

describe("8 writer processes applying packed entries (a request's facts in one invocation), 4 at once (a batch of the applier's queue)", () => {
  it("apply every fact, keep the chains whole and the feed equal to the store", { timeout: 600_000 }, () => applyAcrossWriters(8, 10, 4));
});

describe("a snapshot under GSI lag", () => {
  it("never misses a revocation committed before its version", { timeout: 300_000 }, async () => {
    const { tenant } = await createTenantWithAdminKey(ports, "lagged");
    const [writer] = await cluster.startMany(1);
    const [lagged] = await cluster.startMany(1, { gsiLagMs: 3_000 });
    const ids: string[] = await writer!.call("register", { tenantId: tenant.id, imsis: [imsiOf(1), imsiOf(2), imsiOf(3)] });
    await new Promise((resolve) => setTimeout(resolve, 3_500)); // the registrations are in the index by now
    expect(await writer!.call("act", { tenantId: tenant.id, id: ids[1], action: "revoke" })).toBe("applied");

    // A PEP snapshots right after the revocation (the index does not show it yet), then follows deltas.
    const snapshot = await lagged!.call<{ version: number; entries: FeedEntry[] }>("snapshot", { tenantId: tenant.id, limit: 100 });
    const deltas = await lagged!.call<{ version: number; entries: FeedEntry[] }>("deltas", {
      tenantId: tenant.id,
      since: snapshot.version,
    });
    const view = applyEntries(applyEntries(new Map(), snapshot.entries), deltas.entries);
    expect(view.get(`device|${ids[1]}`)).toMatchObject({ state: "revoked" });
    expect(view.size).toBe(3);
  });
});

describe("writer processes whose eventually consistent reads lag", () => {
  it("bring the feed to every change by themselves (no explicit run), and keep it verifiable", { timeout: 300_000 }, async () => {
    const { tenant } = await createTenantWithAdminKey(ports, "eventual");
    const [registrar] = await cluster.startMany(1);
    const devices = 32;
    await registrar!.call("register", { tenantId: tenant.id, imsis: Array.from({ length: devices }, (_, n) => imsiOf(500 + n)) });
    // Each writer's eventually consistent reads of the control table (the feed head while it follows, the probe, the
    // shard heads above its own in a cut) answer as the table was up to 1 s before (300 ms let a run read nothing stale).
    const writers = await cluster.startMany(8, { eventualLagMs: 1_000 });
    // Whether a writer's eventually consistent read meets an item that moved within the lag depends on how the runs
    // interleave, which a loaded machine stretches: a round whose writers read nothing stale is played again (up to
    // three rounds), so that the feed is shown to come to every change while the lag was served.
    let laggedReads = 0;
    for (let round = 0; round < 3 && laggedReads === 0; round++) {
      const facts = Array.from({ length: 64 }, (_, n) =>
        attach(tenant.id, imsiOf(500 + ((n * 5) % devices)), `10.8.${round}.${n % 24}`, 2_000 + round * 100 + n),
      );
      const outcomes = (
        await Promise.all(
          writers.map((writer, index) => writer.call<string[]>("apply", { events: facts.filter((_, n) => n % 8 === index) })),
        )
      ).flat();
      expect(outcomes.filter((outcome) => !["applied", "duplicate", "stale"].includes(outcome))).toEqual([]);

      // The writers' own runs cover every shard's head: nobody sequences for them.
      const expected = await Promise.all(
        Array.from({ length: 16 }, async (_, shard) => (await readShardHead(ports.db, ports.tables, tenant.id, shard)).seq),
      );
      let head = await readFeedHead(ports.db, ports.tables, tenant.id, 16);
      for (let waited = 0; waited < 20_000 && head.vector.some((seq, shard) => seq < expected[shard]!); waited += 100) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        head = await readFeedHead(ports.db, ports.tables, tenant.id, 16);
      }
      expect(head.vector).toEqual(expected);
      expect(await verifyAuditChain(ports, tenant.id)).toMatchObject({ valid: true });
      const lagged = await Promise.all(writers.map((writer) => writer.call<{ eventualLagged: number }>("storeCalls", {})));
      laggedReads = lagged.reduce((sum, calls) => sum + calls.eventualLagged, 0);
    }
    // The lag was there: reads answered with items older than the store held.
    expect(laggedReads).toBeGreaterThan(0);
  });
});
