/**
 * The size of the feed version records the sequencer writes under concurrency, as stored (the entries deflated) beside
 * the same entries as JSON (how they were stored before, the baseline), from one run. At 2,000 changes/s on one tenant
 * every version lands in one partition (1,000 write units a second at most; docs/write-path.md).
 *
 *   node bench/write/version-size.ts     (DEVICES=400 AT_ONCE=40)
 */
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { applyOperatorEvent, ingestedEvent, portsFor, registerDevice } from "@simroot/core";
import { feedPartition, feedVersionSchema } from "@simroot/core/ledger/feed-version";
import { startDynamoLocal } from "@simroot/local/dynamodb-local";
import { startCluster } from "../../test/support/cluster.ts";

const devices = Number(process.env.DEVICES ?? 400);
const atOnce = Number(process.env.AT_ONCE ?? 40);

const dynamo = await startDynamoLocal({ startTimeoutMs: 300_000 });
const cluster = await startCluster({ endpoint: dynamo.endpoint });
const ports = portsFor(cluster.db, cluster.tables, { publish: async () => {} });
const tenantId = "ten_version_size";
const ctx = { tenantId, actor: "system:bench", requestId: "req_version_size" };
const imsiOf = (n: number) => `20803${String(n).padStart(10, "0")}`;

for (let n = 0; n < devices; n++) await registerDevice(ports, ctx, { imsi: imsiOf(n) });
const attach = (n: number) => {
  const normalized = {
    type: "sim.attached",
    dedupeKey: crypto.randomUUID(),
    occurredAt: new Date().toISOString(),
    device: { imsi: imsiOf(n) },
    sourceType: "bench",
    data: { bearer: "cellular", ipv4: `10.${Math.floor(n / 250)}.${n % 250}.7`, apn: "iot.simroot", plmn: { mcc: "208", mnc: "01" } },
  };
  return applyOperatorEvent(
    ports,
    ingestedEvent({ ...ctx, actor: "source:src_bench" }, "src_bench", "simroot", normalized as never, new Date()),
  );
};
// `atOnce` attaches in flight together: one sequencing run covers many of them.
for (let n = 0; n < devices; n += atOnce) await Promise.all(Array.from({ length: Math.min(atOnce, devices - n) }, (_, k) => attach(n + k)));

const rows = new Map<string, { versions: number; entries: number; json: number; stored: number }>();
let start: Record<string, unknown> | undefined;
do {
  const page = await ports.db.send(
    new QueryCommand({
      TableName: cluster.tables.audit,
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": feedPartition(tenantId) },
      ExclusiveStartKey: start,
    }),
  );
  for (const item of page.Items ?? []) {
    const record = feedVersionSchema.parse(item);
    const stored = item.entries instanceof Uint8Array ? item.entries.byteLength : JSON.stringify(item.entries).length;
    const size = record.entries.length;
    const band = size <= 1 ? "1 entry" : size < 10 ? "2-9 entries" : size < 30 ? "10-29 entries" : "30+ entries";
    const row = rows.get(band) ?? { versions: 0, entries: 0, json: 0, stored: 0 };
    row.versions++;
    row.entries += size;
    row.json += Buffer.byteLength(JSON.stringify(record.entries));
    row.stored += stored;
    rows.set(band, row);
  }
  start = page.LastEvaluatedKey;
} while (start);

console.log(`${devices} registrations one at a time, then ${devices} attaches ${atOnce} at a time: the feed versions' entries`);
console.table(
  Object.fromEntries(
    [...rows].map(([band, row]) => [
      band,
      {
        versions: row.versions,
        "entries/version": Number((row.entries / row.versions).toFixed(1)),
        "JSON bytes/version (before)": Math.round(row.json / row.versions),
        "stored bytes/version (now)": Math.round(row.stored / row.versions),
        "now/before": Number((row.stored / row.json).toFixed(3)),
      },
    ]),
  ),
);
await cluster.stop();
await dynamo.stop();
