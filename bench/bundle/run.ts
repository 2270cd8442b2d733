/**
 * `npm run bench:bundle`: each function built the way SST deploys it (scripts/bundle/build.ts),
 * its minified size and its median module initialisation (a fresh `node` per sample, as a
 * Lambda cold start imports it), against the budget, beside the baseline from the same run:
 * SST's default build (the AWS SDK bundled, every zod locale).
 *
 * Init is the CPU time of the import on this machine (shared with other work, so wall time
 * would mostly measure the wait for a core): read the ratio first, then the milliseconds.
 * The DynamoDB clients alone (a control from the same run, what every function that uses DynamoDB
 * loads at module init) take 70 to 80 ms here on a quiet machine (150 to 190 ms on a busy one),
 * so the 100 ms budget leaves a function's own code 20 to 30 ms; the last column is what it adds.
 * The other clients (KMS, EventBridge, SQS, the IoT data plane, Lambda) are loaded on first use.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { functionNames, type FunctionName } from "../../packages/core/src/platform/functions.ts";
import { bundling } from "../../packages/core/src/platform/limits.ts";
import { bundleFunction, bytesByPackage, type BundleVariant } from "../../scripts/bundle/build.ts";

const samples = Number(process.env.SAMPLES ?? 7);
// Inside the repository, so `@aws-sdk/*` resolves from node_modules as from the Lambda runtime.
const dir = join(import.meta.dirname, "..", "..", "node_modules", ".cache", "simroot-bundles");
mkdirSync(dir, { recursive: true });

function median(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function initMs(file: string): number {
  // CPU time (user + system) of the import, not wall time: on a machine shared by other work the
  // wall clock mostly measures waiting for a core. A Lambda cold start has its core to itself.
  const script = `const c = process.cpuUsage(); await import(${JSON.stringify(file)}); const u = process.cpuUsage(c); console.log((u.user + u.system) / 1000);`;
  const env = { ...process.env, AWS_REGION: "us-east-1", SIMROOT_FEED_KMS_KEY_ID: "bench", SIMROOT_BUS_NAME: "bench" };
  return median(
    Array.from({ length: samples }, () =>
      Number(execFileSync(process.execPath, ["--input-type=module", "-e", script], { env, encoding: "utf8" }).trim()),
    ),
  );
}

async function measure(name: FunctionName, variant: BundleVariant) {
  const bundle = await bundleFunction(name, variant);
  const file = join(dir, `${name}${variant.baseline ? ".baseline" : ""}.mjs`);
  writeFileSync(file, bundle.code);
  return { bundle, kb: bundle.bytes / 1024, ms: initMs(file) };
}

// Controls from the same run: an empty module (the loader's own cost) and the AWS SDK clients
// the functions import from the runtime at module init (not in the bundle, but in every cold start).
const empty = join(dir, "empty.mjs");
writeFileSync(empty, "export {};\n");
const sdk = join(dir, "sdk.mjs");
writeFileSync(sdk, ["lib-dynamodb", "client-dynamodb"].map((c) => `import "@aws-sdk/${c}";`).join("\n"));

const kb = (value: number) => `${value.toFixed(0).padStart(5)} KB`;
const ms = (value: number) => `${value.toFixed(0).padStart(4)} ms`;
console.log(
  `budget: ${kb(bundling.budgetBytes / 1024)} minified, ${ms(bundling.initBudgetMs)} median init CPU time (${samples} samples each)\n`,
);
const sdkMs = initMs(sdk);
console.log(`controls: empty module ${ms(initMs(empty))}, DynamoDB's AWS SDK clients from node_modules ${ms(sdkMs)}\n`);
console.log("function           size       init   | baseline (SST default)  | size ratio  init ratio | init beyond the SDK control");
for (const name of functionNames) {
  const now = await measure(name, {});
  const base = await measure(name, { baseline: true });
  const verdict = (ok: boolean) => (ok ? "ok  " : "OVER");
  console.log(
    `${name.padEnd(18)} ${kb(now.kb)} ${verdict(now.kb * 1024 <= bundling.budgetBytes)} ${ms(now.ms)} ${verdict(now.ms <= bundling.initBudgetMs)}` +
      ` | ${kb(base.kb)} ${ms(base.ms)} | ${(now.kb / base.kb).toFixed(2).padStart(10)} ${(now.ms / base.ms).toFixed(2).padStart(10)}` +
      ` | ${ms(now.ms - sdkMs)}`,
  );
  console.log(
    `${"".padEnd(19)}largest: ${bytesByPackage(now.bundle)
      .slice(0, 4)
      .map(([pkg, bytes]) => `${pkg} ${(bytes / 1024).toFixed(0)} KB`)
      .join(", ")}`,
  );
}
