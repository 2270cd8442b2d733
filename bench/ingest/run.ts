/**
 * bench/ingest: operator events per second end to end on the embedded default (webhooks
 * over HTTP, the durable local bus, the applier and timeline handlers, DynamoDB Local with
 * on-disk storage, as `npm start` runs), side by side in the same run with the raw
 * transactional write rate of the same DynamoDB Local: one TransactWriteItems per event
 * writing what a naive pipeline would (the device, its audit record, its IP binding).
 *
 *   npm run bench:ingest                 (EVENTS=4000 DEVICES=1000 BATCH=10 CLIENTS=8)
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { createSource, createTenantWithAdminKey, ensureTables, registerDevice, tableNames, type DeviceRef } from "@simroot/core";
import { startLocalRuntime } from "@simroot/local/runtime";
import { signedHeaders } from "./sign.ts";

const events = Number(process.env.EVENTS ?? 4000);
const devices = Number(process.env.DEVICES ?? 1000);
const batch = Number(process.env.BATCH ?? 10);
const clients = Number(process.env.CLIENTS ?? 8);

const dataDir = await mkdtemp(join(tmpdir(), "simroot-bench-"));
const runtime = await startLocalRuntime({ dataDir, port: 0 });
const ports = runtime.ports;
const { tenant } = await createTenantWithAdminKey(ports, "bench");
const ctx = { tenantId: tenant.id, actor: "system:bench", requestId: "req_bench" };
const { source, credentials } = await createSource(ports, ctx, { name: "bench", format: "simroot" });

const imsiOf = (n: number) => `20801${String(n).padStart(10, "0")}`;
process.stdout.write(`registering ${devices} devices... `);
for (let start = 0; start < devices; start += 50) {
  await Promise.all(
    Array.from({ length: Math.min(50, devices - start) }, (_, k) => registerDevice(ports, ctx, { imsi: imsiOf(start + k) })),
  );
}
await runtime.settled();
console.log("done");

// ---- baseline: one transaction per event, same store, same concurrency ----
const raw = tableNames("bench-raw-");
await ensureTables(ports.db, raw);
async function rawRate(count: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients * 4 }, async () => {
      for (let n = next++; n < count; n = next++) {
        const device = n % devices;
        await ports.db.send(
          new TransactWriteCommand({
            TransactItems: [
              {
                Put: {
                  TableName: raw.identity,
                  Item: { pk: `D#${device}`, sk: "device", state: "active", session: { ipv4: `10.0.${n % 250}.1` }, revision: n },
                },
              },
              {
                Put: {
                  TableName: raw.audit,
                  Item: { pk: "T#bench", sk: String(n).padStart(12, "0"), action: "sim.attached", subject: `dev_${device}` },
                },
              },
              { Put: { TableName: raw.identity, Item: { pk: `B#10.0.${n % 250}.1`, sk: "binding", deviceId: `dev_${device}` } } },
            ],
          }),
        );
      }
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

// ---- the pipeline: signed webhooks over HTTP, applied end to end ----
let sequence = 0;
function fact(n: number) {
  const device: DeviceRef = { imsi: imsiOf(n % devices) };
  const round = Math.floor(n / devices);
  return {
    type: round % 2 === 0 ? "sim.attached" : "sim.detached",
    dedupeKey: `bench-${++sequence}`,
    occurredAt: new Date(Date.UTC(2026, 10, 22, 8, 0, round)).toISOString(),
    device,
    sourceType: "bench",
    data: round % 2 === 0 ? { bearer: "cellular", ipv4: `10.${(n % devices) >> 8}.${(n % devices) & 255}.${1 + (round % 200)}` } : {},
  };
}

async function pipelineRate(count: number) {
  const bodies: string[] = [];
  for (let start = 0; start < count; start += batch)
    bodies.push(JSON.stringify(Array.from({ length: Math.min(batch, count - start) }, (_, k) => fact(start + k))));
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let n = next++; n < bodies.length; n = next++) {
        const body = bodies[n]!;
        const response = await fetch(`${runtime.url}${source.ingestPath}`, {
          method: "POST",
          headers: signedHeaders(credentials.webhookSecret!, body),
          body,
        });
        if (response.status !== 202) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
      }
    }),
  );
  const acknowledged = performance.now();
  await runtime.settled();
  const applied = performance.now();
  return { acceptedPerSecond: count / ((acknowledged - started) / 1000), appliedPerSecond: count / ((applied - started) / 1000) };
}

await rawRate(500); // warm up the JIT on both sides
await pipelineRate(Math.min(500, events));
const baseline = await rawRate(events);
const pipeline = await pipelineRate(events);

const ratio = pipeline.appliedPerSecond / baseline;
console.log(
  `\nbench/ingest: ${events} events, ${devices} devices, webhooks of ${batch}, ${clients} HTTP clients, DynamoDB Local on disk\n`,
);
console.table({
  "raw DynamoDB Local: 1 TransactWriteItems per event (device, audit, binding)": { "events/s": Math.round(baseline) },
  "pipeline: accepted (202, durably queued)": { "events/s": Math.round(pipeline.acceptedPerSecond) },
  "pipeline: applied end to end (webhook -> bus -> applier -> DynamoDB)": { "events/s": Math.round(pipeline.appliedPerSecond) },
});
console.log(`ratio applied / raw = ${ratio.toFixed(2)} (target >= 1.0, floor 0.5)`);
await runtime.stop();
await rm(dataDir, { recursive: true, force: true });
