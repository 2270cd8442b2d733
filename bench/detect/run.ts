/**
 * bench/detect: continuous verification, each figure beside its baseline in the same run.
 *   npm run bench:detect   (PARTS=latency,quality,cost WORKERS=4 PER_WORKER=250 ROUNDS=10 WARMUP=3
 *                            DEVICES=10000 DAYS=7 WINDOW_MINUTES=60 SEED=14 INJECTED=0.01 PER_REPORT=1,50 REPORTS=200
 *                            DYNAMODB_ENDPOINT=<an already running DynamoDB Local>)
 * The machine may be shared: figures are noisy; compare each to its baseline.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTenantWithAdminKey } from "@simroot/core";
import { startLocalRuntime } from "@simroot/local/runtime";
import { seedFleet } from "../feed/fleet.ts";
import { measureRevocation, tableRow } from "../feed/revocation.ts";
import { measureCost } from "./cost.ts";
import { measureQuality } from "./quality.ts";
import { oddReport, warmBaselines } from "./warm.ts";

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const parts = new Set(env("PARTS", "latency,quality,cost").split(","));
const workers = Number(env("WORKERS", "4"));
const perWorker = Number(env("PER_WORKER", "250"));
const rounds = Number(env("ROUNDS", "10"));
const warmup = Number(env("WARMUP", "3"));

if (parts.has("quality")) quality();
if (parts.has("latency") || parts.has("cost")) {
  const dataDir = await mkdtemp(join(tmpdir(), "simroot-bench-detect-"));
  // DYNAMODB_ENDPOINT: an already running DynamoDB (Local), e.g. when the machine is too busy to start one quickly.
  const external = process.env.DYNAMODB_ENDPOINT;
  const runtime = await startLocalRuntime({
    dataDir,
    port: 0,
    ...(external ? { dynamoEndpoint: external, tablePrefix: `bench-detect-${Date.now().toString(36)}-` } : {}),
  });
  try {
    if (parts.has("latency")) await latency(runtime);
    if (parts.has("cost")) await cost(runtime);
  } finally {
    await runtime.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

type Runtime = Awaited<ReturnType<typeof startLocalRuntime>>;

async function latency(runtime: Runtime) {
  const url = runtime.url!;
  const api = async <Body>(token: string, path: string, body?: unknown) => {
    const response = await fetch(`${url}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
    return response.json() as Promise<Body>;
  };
  const { tenant, token: adminToken } = await createTenantWithAdminKey(runtime.ports, "detect");
  const devices = (await seedFleet(runtime.ports, tenant.id, 1000)).map((device) => device.id);
  const pepToken = (await api<{ token: string }>(adminToken, "/v1/keys", { name: "edge", role: "pep" })).token;
  const publicKeyPem = (await api<{ keys: { publicKeyPem: string }[] }>(pepToken, "/v1/feed/keys")).keys[0]!.publicKeyPem;
  await api(adminToken, "/v1/automation/rules", {
    name: "contain unknown destinations",
    pattern: { source: ["simroot"], "detail-type": ["anomaly.detected"], detail: { data: { kind: ["new-destination"] } } },
    actions: [{ type: "quarantine" }],
    rateLimit: { max: 1000, perSeconds: 60 },
  });
  const used = warmup + rounds;
  await warmBaselines(runtime.ports, tenant.id, devices.slice(0, used));
  const setup = { url, adminToken, tenantId: tenant.id, pepToken, publicKeyPem, deviceIds: devices, deniedReason: "deny.quarantined" };
  console.log(
    `detection to enforcement: ${workers} processes x ${perWorker} PEP sync clients, ${rounds} rounds measured each way after ${warmup} not counted...`,
  );
  const detected = await measureRevocation(
    {
      ...setup,
      trigger: async (deviceId) => {
        const answer = await api<{ anomalies: number }>(
          pepToken,
          "/v1/flows",
          oddReport([deviceId], `c2-${deviceId.slice(-6).toLowerCase()}.example.net`),
        );
        if (answer.anomalies !== 1) throw new Error(`the report caused ${answer.anomalies} anomalies`);
      },
    },
    { workers, perWorker, rounds, warmup, mode: "stream", intervalMs: 0 },
  );
  const direct = await measureRevocation(
    {
      ...setup,
      deviceIds: devices.slice(used),
      trigger: async (deviceId) => void (await api(adminToken, `/v1/devices/${deviceId}/quarantine`, { reason: "bench" })),
    },
    { workers, perWorker, rounds, warmup, mode: "stream", intervalMs: 0 },
  );
  console.log("\n1. detection to enforcement (ms): flow report -> anomaly.detected -> rule -> quarantine -> every PEP denies\n");
  console.table({
    "flow report showing a new destination": tableRow(detected),
    "baseline: quarantine through the API (no detection, no rule)": tableRow(direct),
  });
  console.log("target: p99 <= 1000 ms");
}

function quality() {
  const options = {
    devices: Number(env("DEVICES", "10000")),
    days: Number(env("DAYS", "7")),
    windowMinutes: Number(env("WINDOW_MINUTES", "60")),
    seed: Number(env("SEED", "14")),
    injectedShare: Number(env("INJECTED", "0.01")),
  };
  console.log(
    `detection quality: ${options.devices} devices, ${options.days} days of ${options.windowMinutes}-minute windows, seed ${options.seed}...`,
  );
  const result = measureQuality(options);
  console.log(
    `\n2. detection quality: ${result.injected} injected anomalies, ${result.windows.toLocaleString("en")} device-windows, ${result.facts.toLocaleString("en")} operator events, ${result.deviceDays.toLocaleString("en")} device-days\n`,
  );
  const row = (score: typeof result.learned) => ({
    "recall %": +(score.recall * 100).toFixed(1),
    "false alarms": score.falseAlarms,
    "per 1,000 device-days": +score.perThousandDeviceDays.toFixed(2),
    "CPU µs per item": +((score.cpuMs * 1000) / (result.windows + result.facts)).toFixed(1),
  });
  console.table({ "simroot detectors (learned baselines)": row(result.learned), "baseline: static thresholds": row(result.static) });
  console.table({ "recall by kind, simroot": result.learned.perKind, "recall by kind, static": result.static.perKind });
  console.table({ "false alarms by kind, simroot": result.learned.falseByKind, "false alarms by kind, static": result.static.falseByKind });
  console.log("target: recall >= 95 %, <= 1 false alarm per 1,000 device-days");
}

async function cost(runtime: Runtime) {
  const { tenant } = await createTenantWithAdminKey(runtime.ports, "cost");
  const devices = (await seedFleet(runtime.ports, tenant.id, 500)).map((device) => device.id);
  const reports = Number(env("REPORTS", "200"));
  const rows: Record<string, unknown> = {};
  for (const perReport of env("PER_REPORT", "1,50").split(",").map(Number)) {
    const { withDetection, storeOnly } = await measureCost(
      runtime.ports,
      tenant.id,
      devices,
      perReport,
      Math.max(12, Math.round(reports / perReport)),
    );
    const row = (figures: typeof withDetection) => ({
      "CPU ms / report": +figures.cpuMsPerReport.toFixed(2),
      "wall ms / report": +figures.wallMsPerReport.toFixed(1),
      "WCU / report": +figures.wcuPerReport.toFixed(2),
      "WCU / device-window": +figures.wcuPerDeviceWindow.toFixed(2),
    });
    rows[`${perReport} device(s) per report, with detection`] = row(withDetection);
    rows[`${perReport} device(s) per report, baseline: store only`] = row(storeOnly);
  }
  console.log("\n3. cost of detection per flow report (CPU of the control plane process; WCU estimated from the items written)\n");
  console.table(rows);
  console.log(
    "1M devices reporting every 5 min = 3,333 device-windows/s: multiply by 'WCU / device-window' for the write rate detection adds.",
  );
}
