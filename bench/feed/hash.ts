/**
 * The canonical JSON every feed page, delta and audit record is hashed over, against the form it replaced (the same
 * bytes: packages/core/src/ledger/chain.test.ts), on a snapshot page of 1,000 device entries.
 *   node bench/feed/hash.ts    (PAGES=300 ROUNDS=3)
 */
import { canonicalJson } from "@simroot/core";
import { canonicalJsonBefore as before } from "../../packages/core/src/ledger/chain.test-support.ts";

const page = Array.from({ length: 1000 }, (_, index) => {
  const id = `dev_01JD${String(index).padStart(22, "0")}`;
  const value = { id, state: "active", labels: { site: "berlin", line: String(index % 7) }, imsi: "262011234567890" };
  return {
    version: 4711,
    kind: "device",
    key: id,
    value: { ...value, eid: `8904903200000100000000000${index}`, credentialFingerprint: "ab".repeat(32) },
  };
});
if (canonicalJson(page) !== before(page)) throw new Error("the bytes differ");

const pages = Number(process.env.PAGES ?? 300);
const time = (hash: (value: unknown) => string) => {
  const started = performance.now();
  for (let count = 0; count < pages; count++) hash(page);
  return (performance.now() - started) / pages;
};
console.log("canonical JSON of a 1,000-entry snapshot page (ms per page; alternating, after a warm-up)");
time(before);
time(canonicalJson);
for (let round = 1; round <= Number(process.env.ROUNDS ?? 3); round++) {
  const old = time(before);
  const now = time(canonicalJson);
  console.log(`  round ${round}: before ${old.toFixed(2)}, now ${now.toFixed(2)} (ratio ${(now / old).toFixed(2)})`);
}
