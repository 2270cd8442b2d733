/**
 * What a device item is made of in steady state, against the 1 KB past which its write costs 4 write units in the
 * commit's transaction, not 2 (docs/write-path.md, "The device item"): a device carrying only an IMSI and one carrying
 * what real ones do (EID, ICCIDs, IMEI, a name, labels), each after 50 attach/detach facts with ids as long as real
 * ones (its window full: 32 facts), and what other encodings of the same window would weigh.
 *
 *   node bench/write/device-item.ts
 */
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { createHash } from "node:crypto";
import { brotliCompressSync, constants, deflateRawSync, inflateRawSync } from "node:zlib";
import { eidValid, luhnValid, portsFor } from "@simroot/core";
import { startDynamoLocal } from "@simroot/local/dynamodb-local";
import { itemBytes, transactionalWriteUnits, valueBytes } from "../../test/support/billed-units.ts";
import { startCluster } from "../../test/support/cluster.ts";
import { unitsPerAppliedEvent } from "./capacity.ts";

/** `digits` and its Luhn check digit (an IMEI's 15th, an ICCID's last). */
function luhn(digits: string) {
  for (let check = 0; check < 10; check++) if (luhnValid(`${digits}${check}`)) return `${digits}${check}`;
  throw new Error("unreachable");
}
/** 30 digits and the two EID check digits (the 32-digit number mod 97 is 1). */
function withCheck(digits: string) {
  for (let check = 0; check < 100; check++)
    if (eidValid(`${digits}${String(check).padStart(2, "0")}`)) return `${digits}${String(check).padStart(2, "0")}`;
  throw new Error("unreachable");
}

const dynamo = await startDynamoLocal({ startTimeoutMs: 300_000 });
try {
  const cluster = await startCluster({ endpoint: dynamo.endpoint });
  const ports = portsFor(cluster.db, cluster.tables, { publish: async () => {} });
  const bare = await unitsPerAppliedEvent(ports, 2, 100, 80, 1, true);
  // The same, devices registered with what real ones carry besides their IMSI.
  const full = await unitsPerAppliedEvent(ports, 2, 100, 80, 1, true, (n) => ({
    name: `meter ${n}, building C`,
    eid: withCheck(`890490320000010000000000${String(n).padStart(6, "0")}`),
    iccids: [luhn(`893301000000001234${n}`), luhn(`894411000000005432${n}`)],
    imei: luhn(`3569380356438${n}`),
    labels: { site: "lyon-3", fleet: "meters", segment: "ot" },
  }));
  console.log(
    `write units per applied event (real-length ids): IMSI only ${bare.perEvent.toFixed(1)}, full identity ${full.perEvent.toFixed(1)}`,
  );
  const { Items = [] } = await cluster.db.send(new ScanCommand({ TableName: cluster.tables.identity }));
  const devices = Items.filter((item) => item.history instanceof Uint8Array);
  for (const kind of ["IMSI only", "full identity"]) {
    const item = devices.find((each) => (kind === "IMSI only" ? each.eid === undefined : each.eid !== undefined))!;
    const history = JSON.parse(inflateRawSync(item.history).toString("utf8"));
    const rest = itemBytes(item) - valueBytes(item.history) - "history".length;
    const deflated = (value: unknown) => deflateRawSync(JSON.stringify(value), { level: 9 }).length;
    const brotli = (value: unknown) =>
      brotliCompressSync(JSON.stringify(value), { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
    // Keys as a 64-bit hash (11 base64url characters; `api|` kept: the fold reads who a fact speaks for from it).
    const hashed = (facts: { key: string }[]) =>
      facts.map((fact) => ({
        ...fact,
        key: (fact.key.startsWith("api|") ? "api|" : "") + createHash("sha256").update(fact.key).digest("base64url").slice(0, 11),
      }));
    const window16 = { ...history, facts: history.facts.slice(-16) };
    const rows: [string, number][] = [
      ["as stored (deflated JSON)", valueBytes(item.history)],
      ["keys hashed to 64 bits", deflated({ ...history, facts: hashed(history.facts) })],
      ["keys hashed, brotli", brotli({ ...history, facts: hashed(history.facts) })],
      ["a window of 16 facts, keys hashed", deflated({ ...window16, facts: hashed(window16.facts) })],
    ];
    console.log(`\n${kind}: item ${itemBytes(item)} bytes as DynamoDB sizes it; the rest of the item beside its window ${rest} bytes`);
    console.log(`  the window (${history.facts.length} facts)            window   item   units in the transaction`);
    for (const [label, bytes] of rows) {
      const total = rest + "history".length + bytes;
      console.log(`  ${label.padEnd(36)} ${String(bytes).padStart(6)} ${String(total).padStart(6)}   ${transactionalWriteUnits(total)}`);
    }
  }
} finally {
  await dynamo.stop();
}
process.exit(0);
