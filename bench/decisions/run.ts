/**
 * Decision benchmark: simroot's compiled engine next to node-casbin, Cedar (cedar-wasm) and
 * a bare Map lookup, on one synthetic tenant (see tenant.ts), each on one core.
 * Run: node bench/decisions/run.ts
 *
 * The parent builds the tenant, checks that casbin and Cedar decide like our engine on the
 * rules they can express (no schedules), then measures each row in a fresh child process
 * (`run.ts --row <n>`), so that no engine runs on JIT state (inlining, call-site feedback,
 * heap) left by another. Targets for our engine: >= 1,000,000 decisions/s, p99 <= 5 µs.
 */
import { spawnSync } from "node:child_process";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { compilePolicy } from "../../packages/core/src/policy/compile.ts";
import type { DecisionInput } from "../../packages/core/src/policy/model.ts";
import { buildCasbin } from "./casbin.ts";
import { buildCedar } from "./cedar.ts";
import { measure, table, type MeasureOptions, type Measurement } from "./measure.ts";
import { buildTenant, expressibleSubset, type Tenant } from "./tenant.ts";

const log = (message: string) => process.stdout.write(`${message}\n`);
const seconds = (since: bigint) => (Number(process.hrtime.bigint() - since) / 1e9).toFixed(2);

const fast: MeasureOptions = { decisions: 3_000_000, batch: 8, maxSeconds: 6, warmSeconds: 0.5, latencySamples: 250_000 };
const slow: MeasureOptions = { decisions: 1_000_000, batch: 1, maxSeconds: 10, warmSeconds: 4, latencySamples: 50_000 };

interface Row {
  readonly name: string;
  readonly note: string;
  readonly options: MeasureOptions;
  /** Builds the decision function over the tenant's request pool (by index). */
  setup(tenant: Tenant): Promise<(i: number) => boolean>;
}

const rows: Row[] = [
  {
    name: "simroot engine",
    note: "full policy, frozen labels (identity cache)",
    options: fast,
    async setup({ set, requests }) {
      const engine = compilePolicy(set);
      return (i) => engine.decide(requests[i]!).allow;
    },
  },
  {
    name: "simroot engine",
    note: "no-schedule subset (what casbin/Cedar run)",
    options: fast,
    async setup({ set, requests }) {
      const engine = compilePolicy(expressibleSubset(set));
      return (i) => engine.decide(requests[i]!).allow;
    },
  },
  {
    name: "simroot engine",
    note: "full policy, plain labels (label key per call)",
    options: { ...fast, decisions: 1_500_000 },
    async setup({ set, requests }) {
      const engine = compilePolicy(set);
      const plain = requests.map((r) => ({ ...r, device: { ...r.device, labels: { ...r.device.labels } } }));
      return (i) => engine.decide(plain[i]!).allow;
    },
  },
  {
    name: "node-casbin",
    note: "enforceSync, subset",
    options: slow,
    async setup({ set, devices, requests }) {
      const casbin = await buildCasbin(expressibleSubset(set), devices);
      return (i) => casbin.decide(requests[i]!);
    },
  },
  {
    name: "Cedar (cedar-wasm)",
    note: "statefulIsAuthorized, preparsed, subset",
    options: slow,
    async setup({ set, devices, requests }) {
      const cedar = buildCedar(expressibleSubset(set), devices);
      return (i) => cedar.decide(requests[i]!);
    },
  },
  {
    name: "Map.get ceiling",
    note: "precomputed key -> boolean",
    options: { ...fast, decisions: 10_000_000 },
    async setup({ set, requests }) {
      const engine = compilePolicy(set);
      const keys = requests.map(
        (r) => `${r.device.id}|${r.destination.ip ?? ""}|${r.destination.fqdn ?? ""}|${r.port}|${r.protocol}|${r.principal ?? ""}`,
      );
      const lookup = new Map(keys.map((key, i) => [key, engine.decide(requests[i]!).allow]));
      return (i) => lookup.get(keys[i]!) === true;
    },
  },
];

const rowFlag = process.argv.indexOf("--row");
if (rowFlag >= 0) {
  // Child: measure one row, print it as JSON.
  const row = rows[Number(process.argv[rowFlag + 1])]!;
  const tenant = buildTenant();
  const decide = await row.setup(tenant);
  log(JSON.stringify(measure(row.name, tenant.requests.length, decide, row.options)));
} else {
  const started = process.hrtime.bigint();
  const tenant = buildTenant();
  const { requests } = tenant;
  const subset = expressibleSubset(tenant.set);

  let t = process.hrtime.bigint();
  const engine = compilePolicy(tenant.set);
  const compileSeconds = seconds(t);
  const subsetEngine = compilePolicy(subset);
  t = process.hrtime.bigint();
  const casbin = await buildCasbin(subset, tenant.devices);
  const casbinSeconds = seconds(t);
  t = process.hrtime.bigint();
  const cedar = buildCedar(subset, tenant.devices);
  const cedarSeconds = seconds(t);

  log(
    `node ${process.version} on ${cpus()[0]?.model ?? "unknown CPU"} (${cpus().length} logical CPUs); each row in its own process, single-threaded`,
  );
  log(
    `tenant: ${tenant.devices.length} devices in ${new Set(tenant.devices.map((d) => d.segment)).size} label segments, ` +
      `${tenant.set.rules.length} rules (${tenant.set.rules.filter((r) => r.effect === "deny").length} deny, ` +
      `${tenant.set.rules.length - subset.rules.length} with schedules), ${tenant.set.grants.length} grants, ${requests.length} distinct requests`,
  );
  log(
    `setup: compile ${compileSeconds}s, casbin ${casbinSeconds}s (${casbin.lines} policy lines), cedar ${cedarSeconds}s (${cedar.policies} policies)`,
  );

  const reasons = new Map<string, number>();
  for (const request of requests) {
    const reason = engine.decide(request).reason;
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  log(
    `decision mix: ${[...reasons]
      .sort((a, b) => b[1] - a[1])
      .map(([reason, n]) => `${reason} ${((100 * n) / requests.length).toFixed(1)}%`)
      .join(", ")}`,
  );

  // Agreement on the expressible subset, before timing anything.
  const sample = 3000;
  for (const [name, decide] of [
    ["casbin", casbin.decide],
    ["cedar", cedar.decide],
  ] as const) {
    const mismatches: DecisionInput[] = [];
    let allowed = 0;
    for (let i = 0; i < sample; i++) {
      const ours = subsetEngine.decide(requests[i]!).allow;
      if (ours) allowed++;
      if (decide(requests[i]!) !== ours) mismatches.push(requests[i]!);
    }
    log(
      `agreement ${name} vs simroot (no-schedule subset): ${sample - mismatches.length}/${sample} equal (${allowed} allowed, ${sample - allowed} denied by simroot)`,
    );
    for (const m of mismatches.slice(0, 3)) log(`  differs: ${JSON.stringify(m)} -> simroot ${JSON.stringify(subsetEngine.decide(m))}`);
  }

  const results: (Measurement & { note: string })[] = [];
  const self = fileURLToPath(import.meta.url);
  for (const [index, row] of rows.entries()) {
    const child = spawnSync(process.execPath, [self, "--row", String(index)], { encoding: "utf8", maxBuffer: 1 << 20 });
    if (child.status !== 0) throw new Error(`row ${index} (${row.name}) failed: ${child.stderr}`);
    results.push({ ...(JSON.parse(child.stdout.trim().split("\n").at(-1)!) as Measurement), note: row.note });
    log(`  measured ${row.name}, ${row.note}`);
  }

  log("");
  log(table(results));
  const ours = results[0]!;
  log("");
  log(
    `targets (full policy): >= 1,000,000 decisions/s: ${ours.perSecond >= 1e6 ? "met" : "MISSED"}; p99 <= 5 µs: ${ours.p99 <= 5000 ? "met" : "MISSED"}`,
  );
  log(`total ${seconds(started)}s`);
}
