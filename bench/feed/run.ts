/**
 * bench/feed: what the policy feed costs, each figure beside its baseline in the same run.
 *   npm run bench:feed            (SIZES=10000,100000)
 */
import { startLocalRuntime } from "@simroot/local/runtime";
import { measureBytes } from "./bytes.ts";

const sizes = (process.env.SIZES ?? "10000,100000").split(",").map(Number);
const runtime = await startLocalRuntime({});
try {
  const rows = [];
  for (const size of sizes) {
    process.stdout.write(`tenant of ${size} devices... `);
    const measured = await measureBytes(runtime, size);
    console.log(`seeded in ${measured.seededSeconds.toFixed(1)} s`);
    rows.push(measured);
  }
  console.log("\nbytes on the wire for one device change (revocation) vs resending the full snapshot\n");
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
} finally {
  await runtime.stop();
}
