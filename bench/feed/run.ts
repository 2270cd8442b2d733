/**
 * bench/feed: what the policy feed costs, each figure beside its baseline in the same run.
 *   npm run bench:feed    (PARTS=revocation,instances,cost,sizes MODES=stream,long-poll,interval SIZES=10000,100000 WORKERS=10 PER_WORKER=100 ROUNDS=10 WARMUP=5 INTERVAL_MS=5000 SNAPSHOT_CONCURRENCY=10)
 * 10,000 PEPs on one machine: WORKERS=20 PER_WORKER=500 SNAPSHOT_CONCURRENCY=1 MODES=stream (start-up snapshots one at a time per worker).
 */
import { fork } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTenantWithAdminKey } from "@simroot/core";
import { startLocalRuntime } from "@simroot/local/runtime";
import { measureBytes } from "./bytes.ts";
import { seedFleet } from "./fleet.ts";
import { measureRevocation, tableRow, type RevocationOptions } from "./revocation.ts";
import { measureInstances } from "./instances.ts";
import { defaultAssumptions, idlePepCost, perChangeCost } from "./cost-model.ts";

const sizes = (process.env.SIZES ?? "10000,100000").split(",").filter(Boolean).map(Number);
const workers = Number(process.env.WORKERS ?? 10);
const perWorker = Number(process.env.PER_WORKER ?? 100);
const rounds = Number(process.env.ROUNDS ?? 10);
const warmup = Number(process.env.WARMUP ?? 5);
const parts = new Set((process.env.PARTS ?? "revocation,instances,cost,sizes").split(","));
const intervalMs = Number(process.env.INTERVAL_MS ?? 5000);
const revocationModes = new Set((process.env.MODES ?? "stream,long-poll,interval").split(","));

const dataDir = await mkdtemp(join(tmpdir(), "simroot-bench-feed-"));
const runtime = await startLocalRuntime({
  dataDir,
  port: 0,
  ...(process.env.DYNAMODB_ENDPOINT ? { dynamoEndpoint: process.env.DYNAMODB_ENDPOINT } : {}),
});
const url = runtime.url!;
const api = async <Body>(token: string, path: string, init: RequestInit = {}) => {
  const response = await fetch(`${url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  });
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return response.json() as Promise<Body>;
};

try {
  // 1. revocation to enforcement, on the embedded default (DynamoDB Local on disk, the durable bus)
  if (parts.has("revocation")) await revocation();
  if (parts.has("instances")) await instances();
  if (parts.has("cost")) cost();
  if (parts.has("sizes")) await perSize();
  console.log("\n3. decisions per second of the PEP engine: npm run bench:decisions");
} finally {
  await runtime.stop();
  await rm(dataDir, { recursive: true, force: true });
}

async function revocation() {
  const { tenant, token: adminToken } = await createTenantWithAdminKey(runtime.ports, "revocation");
  const devices = await seedFleet(runtime.ports, tenant.id, 1000);
  const pepToken = (
    await api<{ token: string }>(adminToken, "/v1/keys", { method: "POST", body: JSON.stringify({ name: "edge", role: "pep" }) })
  ).token;
  const publicKeyPem = (await api<{ keys: { publicKeyPem: string }[] }>(pepToken, "/v1/feed/keys")).keys[0]!.publicKeyPem;
  const storeCpuMs = jvmCpu(dataDir);
  const setup = {
    url,
    adminToken,
    pepToken,
    tenantId: tenant.id,
    publicKeyPem,
    deviceIds: devices.map((device) => device.id),
    ...(storeCpuMs ? { storeCpuMs } : {}),
  };
  console.log(
    `revocation: ${workers} processes x ${perWorker} PEP sync clients, ${rounds} revocations measured each way after ${warmup} not counted...`,
  );
  const modes: { name: string; mode: RevocationOptions["mode"] }[] = [
    { name: "simroot feed (streamed)", mode: "stream" },
    { name: "simroot feed (long poll)", mode: "long-poll" },
    { name: `baseline: same feed polled every ${intervalMs / 1000} s`, mode: "interval" },
  ];
  const rows: Record<string, Record<string, number>> = {};
  let used = 0;
  for (const { name, mode } of modes.filter(({ mode }) => revocationModes.has(mode))) {
    console.log(`  ${name}:`);
    const figures = await measureRevocation(
      { ...setup, deviceIds: setup.deviceIds.slice(used) },
      { workers, perWorker, rounds, warmup, mode, intervalMs },
    );
    used += warmup + rounds;
    rows[name] = tableRow(figures);
  }
  console.log("\n1. revocation through the API -> every PEP denies the device (ms)\n");
  console.table(rows);
  console.log("target: p99 <= 250 ms");
}

/**
 * The CPU time of the DynamoDB Local JVM the runtime started on `dir` (Linux /proc; undefined elsewhere, or with
 * DYNAMODB_ENDPOINT): it shares the machine's cores with the control plane and the PEPs.
 */
function jvmCpu(dir: string): (() => number) | undefined {
  const ticksPerSecond = 100; // USER_HZ on Linux
  const pid = readdirSync("/proc", { withFileTypes: true }).find((entry) => {
    if (!/^\d+$/.test(entry.name)) return false;
    try {
      const command = readFileSync(`/proc/${entry.name}/cmdline`, "utf8");
      // The JVM itself, not the shell that started it.
      return /(^|\/)java$/.test(command.split("\0")[0]!) && command.includes("DynamoDBLocal") && command.includes(dir);
    } catch {
      return false;
    }
  })?.name;
  if (!pid) return undefined;
  return () => {
    // utime and stime, fields 14 and 15, after the command's closing parenthesis.
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(")").at(-1)!.trim().split(" ");
    return ((Number(fields[11]) + Number(fields[12])) / ticksPerSecond) * 1000;
  };
}

// 1b. revocation committed on instance A, PEPs following instances B and C (separate processes)
async function instances() {
  const { tenant, token: adminToken } = await createTenantWithAdminKey(runtime.ports, "instances");
  const devices = await seedFleet(runtime.ports, tenant.id, 1000);
  const figures = await measureInstances({
    endpoint: runtime.endpoint,
    adminToken,
    tenantId: tenant.id,
    deviceIds: devices.map((device) => device.id),
    workers,
    perWorker,
    rounds,
    warmup,
  });
  console.log("\n1b. revocation committed on instance A -> every PEP following instance B or C denies the device (ms)\n");
  console.table(figures);
  console.log("target: p99 <= 250 ms locally; no PEP holds a long poll in the push mode (the AWS shape)");
}

function cost() {
  const model = idlePepCost();
  const usd = (value: number) => `$${value.toFixed(4)}`;
  console.log(
    "\n5. modelled AWS cost of one idle PEP per month (us-east-1 list prices, 1 GB arm64 Lambda; see docs/feed-distribution.md)\n",
  );
  console.table({
    ...Object.fromEntries(Object.entries(model.today).map(([line, value]) => [`today: ${line}`, { "USD / month": usd(value) }])),
    "today: total (long poll, 25 s wait)": { "USD / month": usd(model.todayTotal) },
    ...Object.fromEntries(Object.entries(model.push).map(([line, value]) => [`push: ${line}`, { "USD / month": usd(value) }])),
    [`push: total (IoT Core MQTT + a 304 poll every ${defaultAssumptions.idlePollSeconds} s)`]: { "USD / month": usd(model.pushTotal) },
  });
  console.log(
    `ratio today / push: ${(model.todayTotal / model.pushTotal).toFixed(0)}x; each change then costs ${usd(perChangeCost() * 1000)} per 1,000 PEPs`,
  );
  console.log("target: at most $1 per idle PEP per month");
}

// 2. bytes per change, and 4. PEP memory, per tenant size
async function perSize() {
  const rows = [];
  for (const size of sizes) {
    process.stdout.write(`\ntenant of ${size} devices... `);
    const measured = await measureBytes(runtime, size);
    const memory = await new Promise<{ heap: number; snapshotBytes: number; devices: number }>((resolve, reject) => {
      const child = fork(join(import.meta.dirname, "pep-memory.ts"), {
        execArgv: ["--expose-gc"],
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      child.send({ url, apiKey: measured.pepToken, tenantId: measured.tenantId, publicKeyPem: measured.publicKeyPem });
      child.once("message", (message: { heap: number; snapshotBytes: number; devices: number }) => {
        child.kill();
        resolve(message);
      });
      child.once("exit", (code) => code && reject(new Error(`memory child exited ${code}`)));
    });
    console.log(`seeded in ${measured.seededSeconds.toFixed(1)} s`);
    rows.push({ ...measured, memory });
  }
  console.log("\n2. bytes on the wire for one device change (revocation) vs resending the full snapshot\n");
  console.table(
    Object.fromEntries(
      rows.map((row) => [
        `${row.size.toLocaleString("en")} devices`,
        {
          "delta (bytes)": row.deltaBytes,
          "full snapshot (bytes)": row.snapshotBytes,
          "snapshot entries": row.snapshotEntries,
          "snapshot / delta": Math.round(row.snapshotBytes / row.deltaBytes),
        },
      ]),
    ),
  );
  console.log("target: at most 1 KB per change whatever the fleet size");
  console.log("\n4. PEP memory (heap held by the replicated view and engine) vs the serialized snapshot\n");
  console.table(
    Object.fromEntries(
      rows.map((row) => [
        `${row.size.toLocaleString("en")} devices`,
        {
          "PEP heap (MB)": +(row.memory.heap / 2 ** 20).toFixed(1),
          "snapshot (MB)": +(row.memory.snapshotBytes / 2 ** 20).toFixed(1),
          ratio: +(row.memory.heap / row.memory.snapshotBytes).toFixed(2),
        },
      ]),
    ),
  );
  console.log("target: at most 3 x the serialized snapshot");
}
