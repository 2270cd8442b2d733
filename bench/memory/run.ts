/**
 * bench/memory: one instance serving a tenant of 100,000 devices, heap and RSS beside the
 * caches' former bounds, in the same run.
 *   npm run bench:memory    (DEVICES=100000 HISTORY_KB=18)
 * Every device of the tenant passes through the device cache with a fact history of about
 * HISTORY_KB (the size the issue measured), as an applier working through the fleet would
 * leave it; then a PEP takes the full snapshot through the API. Baseline: the same devices
 * in the cache as it was bounded before (50,000 entries, whatever their size).
 */
import { BatchGetCommand } from "@aws-sdk/lib-dynamodb";
import {
  createTenantWithAdminKey,
  deviceCacheBytes,
  deviceCacheEntries,
  deviceCacheOf,
  deviceSchema,
  rememberDevice,
  type History,
  type Ports,
} from "@simroot/core";
import { deviceKey } from "@simroot/core/device/keys";
import { Lru } from "@simroot/core/store/lru";
import { startLocalRuntime } from "@simroot/local/runtime";
import { seedFleet } from "../feed/fleet.ts";

const size = Number(process.env.DEVICES ?? 100_000);
const historyKb = Number(process.env.HISTORY_KB ?? 18);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc (npm run bench:memory does)");
const mb = (bytes: number) => +(bytes / 2 ** 20).toFixed(1);
const settle = () => {
  gc!();
  gc!();
  return process.memoryUsage();
};

/** A fact history of about `historyKb`, parsed afresh per device (no sharing between entries). */
const historyText = JSON.stringify({
  checkpoint: { state: "active", stateAt: new Date().toISOString(), sessions: {}, profiles: {} },
  facts: Array.from({ length: Math.max(1, Math.round((historyKb * 1024) / 260)) }, (_, n) => ({
    key: `fact-${n}-${"k".repeat(24)}`,
    type: "sim.attached",
    at: new Date(Date.UTC(2026, 10, 1, 0, n)).toISOString(),
    data: { bearer: "cellular", rat: "LTE", plmn: { mcc: "208", mnc: "01" }, apn: "iot.example", ipv4: `10.0.${n % 250}.${n % 200}` },
  })),
});

async function* storedDevices(ports: Ports, tenantId: string, ids: readonly string[]) {
  for (let start = 0; start < ids.length; start += 100) {
    const keys = ids.slice(start, start + 100).map((id) => deviceKey(tenantId, id));
    const { Responses } = await ports.db.send(new BatchGetCommand({ RequestItems: { [ports.tables.identity]: { Keys: keys } } }));
    for (const item of Responses?.[ports.tables.identity] ?? []) {
      const { history: _history, ...rest } = item;
      yield { device: deviceSchema.parse(rest), history: JSON.parse(historyText) as History };
    }
  }
}

const runtime = await startLocalRuntime({
  port: 0,
  logRequests: false,
  ...(process.env.DYNAMODB_ENDPOINT ? { dynamoEndpoint: process.env.DYNAMODB_ENDPOINT } : {}),
});
try {
  const { tenant, token } = await createTenantWithAdminKey(runtime.ports, "memory");
  process.stdout.write(`seeding ${size.toLocaleString("en")} devices... `);
  const devices = await seedFleet(runtime.ports, tenant.id, size);
  const ids = devices.map((device) => device.id);
  devices.length = 0;
  console.log("done");
  const idle = settle();

  for await (const stored of storedDevices(runtime.ports, tenant.id, ids)) rememberDevice(runtime.ports, stored);
  const cache = deviceCacheOf(runtime.ports);
  const afterCache = settle();

  // A PEP takes the whole snapshot through the API (the feed's shared reads, key cache, settings).
  const pep = (await (
    await fetch(`${runtime.url}/v1/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "edge", role: "pep" }),
    })
  ).json()) as { token: string };
  let cursor: string | undefined;
  let entries = 0;
  do {
    const page = (await (
      await fetch(`${runtime.url}/v1/feed?limit=5000${cursor ? `&cursor=${cursor}` : ""}`, {
        headers: { authorization: `Bearer ${pep.token}` },
      })
    ).json()) as { entries: unknown[]; next?: string };
    entries += page.entries.length;
    cursor = page.next;
  } while (cursor);
  const afterSnapshot = settle();

  // Baseline: the cache as it was bounded before this change, holding the same devices.
  let before: Lru<string, unknown> | undefined = new Lru(50_000);
  for await (const stored of storedDevices(runtime.ports, tenant.id, ids)) before.set(stored.device.id, stored);
  const withFormer = settle();
  const formerEntries = before.size;
  before = undefined;

  console.log(
    `\nmemory of one instance serving a tenant of ${size.toLocaleString("en")} devices (history ~${historyKb} KB each), MB after GC\n`,
  );
  console.table({
    "instance idle, fleet seeded": { heap: mb(idle.heapUsed), rss: mb(idle.rss), "device cache entries": 0 },
    [`every device through the device cache (bound ${deviceCacheEntries} entries, ${mb(deviceCacheBytes)} MB serialized)`]: {
      heap: mb(afterCache.heapUsed),
      rss: mb(afterCache.rss),
      "device cache entries": cache.size,
    },
    [`then a PEP snapshot of ${entries.toLocaleString("en")} entries`]: {
      heap: mb(afterSnapshot.heapUsed),
      rss: mb(afterSnapshot.rss),
      "device cache entries": cache.size,
    },
    "baseline: plus the former device cache (50,000 entries, unweighed)": {
      heap: mb(withFormer.heapUsed),
      rss: mb(withFormer.rss),
      "device cache entries": formerEntries,
    },
  });
  console.log("target: the instance stays under 256 MB (heap and RSS; DynamoDB Local runs in its own JVM and is not counted)");
} finally {
  await runtime.stop();
}
