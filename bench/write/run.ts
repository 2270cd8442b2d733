/**
 * bench/write: the write path of one tenant with many writer instances (separate processes,
 * as Lambda runs them, one event at a time each) over one DynamoDB Local, beside the raw
 * one-TransactWriteItems-per-event rate of the same DynamoDB Local, and the write units per
 * applied operator event (ReturnConsumedCapacity TOTAL) beside the figure measured on the
 * code before the ledger was sharded.
 *
 *   npm run bench:write            (EVENTS=640 WRITERS=1,8,32 DEVICES=512)
 *
 * The machine is shared: figures are noisy; compare the rows of one run.
 */
import { TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { createTenantWithAdminKey, ingestedEvent, portsFor, tableNames, verifyAuditChain, type DomainEvent } from "@simroot/core";
import { startDynamoLocal } from "@simroot/local/dynamodb-local";
import { startCluster } from "../../test/support/cluster.ts";
import { unitsPerAppliedEvent, unitsPerRememberedFact } from "./capacity.ts";

const events = Number(process.env.EVENTS ?? 640);
const devices = Number(process.env.DEVICES ?? 512);
// WRITERS= (empty) measures the write units alone.
const writerCounts = (process.env.WRITERS ?? "1,8,32")
  .split(",")
  .map(Number)
  .filter((writers) => writers > 0);
/** Measured on the unsharded code (commit fefc0de) with `bench/write/capacity.ts`, 20 devices, 200 attach/detach events. */
const unitsBefore = 15.8;
/** Steady state measured on a62f58a (fact window stored as a map, about 5 KB) with this file's UUID event keys. */
const steadyBefore = 30.9;
/** A remembered fact (no visible change) measured on ee0839b, where its device write was a one-item transaction. */
const rememberedBefore = 6;

// DYNAMODB_ENDPOINT: a DynamoDB Local already running (else one is started for the run).
const external = process.env.DYNAMODB_ENDPOINT;
/** Facts each writer instance applies at once (1: one Lambda invocation per fact; 10: a batch of a webhook's facts). */
const lanes = Number(process.env.LANES ?? 1);
/**
 * BATCH=10: facts travel 10 to a bus entry, as one request's facts do (core ingest/reported.ts), each entry one
 * invocation of the applier; LANES is then entries at a time per instance. Unset: one entry per fact.
 */
const batch = process.env.BATCH ? Number(process.env.BATCH) : undefined;
const dynamo = external ? { endpoint: external, stop: async () => {} } : await startDynamoLocal({ startTimeoutMs: 300_000 });
const imsiOf = (n: number) => `20801${String(n).padStart(10, "0")}`;

async function rawRate(count: number, clients: number) {
  const cluster = await startCluster({ endpoint: dynamo.endpoint });
  const raw = tableNames(cluster.tablePrefix);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let n = next++; n < count; n = next++) {
        await cluster.db.send(
          new TransactWriteCommand({
            TransactItems: [
              { Put: { TableName: raw.identity, Item: { pk: `D#${n % devices}`, sk: "device", state: "active", revision: n } } },
              { Put: { TableName: raw.audit, Item: { pk: `T#raw#${n % 16}`, sk: String(n).padStart(12, "0"), action: "sim.attached" } } },
            ],
          }),
        );
      }
    }),
  );
  const rate = count / ((performance.now() - started) / 1000);
  await cluster.stop();
  return rate;
}

function attach(tenantId: string, n: number): DomainEvent {
  const ctx = { tenantId, actor: "source:src_bench", requestId: `req_${n}` };
  const normalized = {
    type: "sim.attached",
    dedupeKey: `bench-${n}`,
    occurredAt: new Date(Date.UTC(2026, 10, 22, 8, 0, 0, n)).toISOString(),
    device: { imsi: imsiOf(n % devices) },
    sourceType: "bench",
    data: { bearer: "cellular", ipv4: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` },
  };
  return ingestedEvent(ctx, "src_bench", "simroot", normalized as never, new Date());
}

async function clusterRate(writers: number, shards?: number) {
  const cluster = await startCluster({ endpoint: dynamo.endpoint });
  const ports = portsFor(cluster.db, cluster.tables, { publish: async () => {} });
  const { tenant } = await createTenantWithAdminKey(ports, "bench");
  const instances = await cluster.startMany(writers, shards ? { shards } : {});
  for (let start = 0; start < devices; start += 64) {
    await instances[0]!.call("register", {
      tenantId: tenant.id,
      imsis: Array.from({ length: Math.min(64, devices - start) }, (_, k) => imsiOf(start + k)),
    });
  }
  type Counted = {
    calls: number;
    feedWritesRefused: number;
    readUnits: number;
    writeUnits: number;
    ambiguousTransactions: number;
    readsBy: Record<string, number>;
  };
  const counted = () => Promise.all(instances.map((instance) => instance.call<Counted>("storeCalls", {})));
  // Counted over the facts alone (the registrations before are the same in every row).
  const before = await counted();
  const facts = Array.from({ length: events }, (_, n) => attach(tenant.id, n));
  const started = performance.now();
  const outcomes = (
    await Promise.all(
      instances.map((instance, index) =>
        instance.call<string[]>("apply", { events: facts.filter((_, n) => n % writers === index), lanes, batch }),
      ),
    )
  ).flat();
  const seconds = (performance.now() - started) / 1000;
  const failed = outcomes.filter((outcome) => outcome.startsWith("error:")).length;
  const applied = outcomes.filter((outcome) => outcome === "applied").length;
  const after = await counted();
  // Per applied fact: store calls, refused feed writes, read and write units (every instance's, while it applied).
  const total = (field: Exclude<keyof Counted, "readsBy">) =>
    after.reduce((sum, count, index) => sum + count[field] - before[index]![field], 0);
  const sum = (field: Exclude<keyof Counted, "readsBy">) => total(field) / Math.max(1, applied);
  // Read units per applied fact by command and table (READS_BY=1 prints them).
  const readsBy: Record<string, number> = {};
  after.forEach((count, index) => {
    for (const [by, units] of Object.entries(count.readsBy)) {
      readsBy[by] = (readsBy[by] ?? 0) + (units - (before[index]!.readsBy[by] ?? 0)) / Math.max(1, applied);
    }
  });
  const valid = shards === undefined ? (await verifyAuditChain(ports, tenant.id)).valid : "n/a";
  await cluster.stop();
  return {
    applied,
    failed,
    rate: applied / seconds,
    failure: failed / outcomes.length,
    valid,
    callsPerApplied: sum("calls"),
    refusedPerApplied: sum("feedWritesRefused"),
    readUnitsPerApplied: sum("readUnits"),
    writeUnitsPerApplied: sum("writeUnits"),
    /** Transactions whose write units the meter may have counted short (test/support/billed-units.ts), in all. */
    ambiguous: total("ambiguousTransactions"),
    readsBy,
  };
}

const pct = (value: number) => `${(value * 100).toFixed(1)}%`;
console.log(
  `bench:write  events=${events} devices=${devices} lanes=${lanes} batch=${batch ?? "none"} (2 shared cores: ratios, not absolutes)`,
);
for (const writers of writerCounts) {
  const raw = await rawRate(events, writers);
  const sharded = await clusterRate(writers);
  const single = await clusterRate(writers, 1);
  console.log(
    `writers=${String(writers).padStart(2)}  raw 1-tx/event ${raw.toFixed(0).padStart(5)}/s | 16 shards: ${sharded.rate.toFixed(0).padStart(4)} applied/s, ` +
      `failed ${pct(sharded.failure)}, chain valid ${sharded.valid} | 1 head item: ${single.rate.toFixed(0).padStart(4)} applied/s, failed ${pct(single.failure)}`,
  );
  console.log(
    `            per applied fact, 16 shards: ${sharded.callsPerApplied.toFixed(1)} store calls, ${sharded.refusedPerApplied.toFixed(2)} feed writes refused ` +
      `(another instance wrote that version first) | 1 head item: ${single.callsPerApplied.toFixed(1)} calls, ${single.refusedPerApplied.toFixed(2)} refused`,
  );
  // Each instance applies one fact at a time, as a Lambda instance does: what the cost model's reads should be.
  console.log(
    `            read units, write units per applied fact (${batch ? `one entry of ${batch} facts` : "one fact"} at a time per instance): 16 shards ${sharded.readUnitsPerApplied.toFixed(1)}, ` +
      `${sharded.writeUnitsPerApplied.toFixed(1)} | 1 head item ${single.readUnitsPerApplied.toFixed(1)}, ${single.writeUnitsPerApplied.toFixed(1)}` +
      ` (transactions the meter may have counted short: ${sharded.ambiguous + single.ambiguous})`,
  );
  if (process.env.READS_BY) {
    const by = Object.entries(sharded.readsBy).sort(([, a], [, b]) => b - a);
    console.log(`            read units by call, 16 shards: ${by.map(([call, units]) => `${call} ${units.toFixed(2)}`).join(", ")}`);
  }
}

const capacityCluster = await startCluster({ endpoint: dynamo.endpoint });
const capacityPorts = portsFor(capacityCluster.db, capacityCluster.tables, { publish: async () => {} });
const capacity = await unitsPerAppliedEvent(capacityPorts, 20, 200);
// 50 facts per device, counted after the 40th: every device item carries a full window of 32 facts.
const steady = await unitsPerAppliedEvent(capacityPorts, 20, 1000, 800);
console.log(
  `write units per applied operator event: ${capacity.perEvent.toFixed(1)} now (devices' first 10 facts), ` +
    `${steady.perEvent.toFixed(1)} in steady state (a full 32-fact window in each device item; ${steadyBefore} with the window uncompressed), ` +
    `${unitsBefore} before (unsharded code, first 10 facts), target <= 8`,
);
console.log(
  `  steady state by table (its indexes' copies included): ${Object.entries(steady.perEventByTable)
    .map(([table, units]) => `${table} ${units.toFixed(1)}`)
    .join(", ")}`,
);
// The same with ids as long as real ones and attaches carrying an APN and the network (records over 1 KB cost double).
const realistic = await unitsPerAppliedEvent(capacityPorts, 20, 1000, 800, 1, true);
console.log(
  `  steady state, real-length ids, attaches with APN and network: ${realistic.perEvent.toFixed(1)} (${Object.entries(
    realistic.perEventByTable,
  )
    .map(([table, units]) => `${table} ${units.toFixed(1)}`)
    .join(", ")})`,
);
// The same, 20 facts (of the 20 devices) at once, as a storm brings them: the sequencer's version and head are shared.
const together = await unitsPerAppliedEvent(capacityPorts, 20, 1000, 800, 20);
console.log(
  `  steady state, 20 facts at once: ${together.perEvent.toFixed(1)} (${Object.entries(together.perEventByTable)
    .map(([table, units]) => `${table} ${units.toFixed(1)}`)
    .join(", ")})`,
);
// An applier invocation under load in AWS: a batch of 10 messages of the applier's queue, each an entry of a webhook's
// 10 facts (core platform/limits.ts `applierQueue`), applied side by side: 100 facts of 100 devices at once.
const queueBatch = await unitsPerAppliedEvent(capacityPorts, 100, 4500, 4000, 100);
console.log(
  `  steady state, 100 facts at once (a batch of the applier's queue under load): ${queueBatch.perEvent.toFixed(1)} (${Object.entries(
    queueBatch.perEventByTable,
  )
    .map(([table, units]) => `${table} ${units.toFixed(1)}`)
    .join(", ")})`,
);
const ambiguous = [capacity, steady, realistic, together, queueBatch].reduce((sum, run) => sum + run.ambiguous, 0);
console.log(`  transactions the meter may have counted short (a delete, or index copies, beside another item of a table): ${ambiguous}`);
const remembered = await unitsPerRememberedFact(capacityPorts);
console.log(
  `write units per remembered fact (folded in, nothing visible changed; ${remembered.remembered} of 10): ${remembered.perFact.toFixed(1)} now, ` +
    `${rememberedBefore} before (a one-item transaction)`,
);
await capacityCluster.stop();
await dynamo.stop();
