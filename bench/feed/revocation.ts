/**
 * Revocation to enforcement: `workers` processes of `perWorker` PEP sync clients each follow
 * a tenant; a device is revoked through the API; the latency is the time until each PEP's
 * engine denies it. The same PEPs polling every few seconds instead are the baseline.
 */
import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";

export interface RevocationSetup {
  readonly url: string;
  readonly adminToken: string;
  readonly pepToken: string;
  readonly tenantId: string;
  readonly publicKeyPem: string;
  readonly deviceIds: readonly string[];
  /** The instances the PEPs poll, round robin by worker (default `url`, where revocations are made). */
  readonly pepUrls?: readonly string[];
  /** The feed hub, for mode "push"; its MQTT side, for mode "mqtt". */
  readonly hubUrl?: string;
  readonly mqttUrl?: string;
  /** What changes the device (default: revoke it through the API), and the reason PEPs must then give. */
  readonly trigger?: (deviceId: string) => Promise<void>;
  readonly deniedReason?: string;
  /** CPU the store (DynamoDB Local's JVM) has used so far, ms: the third user of the machine's cores. */
  readonly storeCpuMs?: () => number;
}

const now = () => performance.timeOrigin + performance.now();

function startWorkers(setup: RevocationSetup, workers: number, perWorker: number, mode: RevocationOptions["mode"], intervalMs: number) {
  return Promise.all(
    Array.from({ length: workers }, (_, index) => {
      const child = fork(join(import.meta.dirname, "pep-worker.ts"), { stdio: ["ignore", "inherit", "inherit", "ipc"] });
      const url = setup.pepUrls?.[index % setup.pepUrls.length] ?? setup.url;
      child.send({
        url,
        hubUrl: setup.hubUrl,
        mqttUrl: setup.mqttUrl,
        apiKey: setup.pepToken,
        tenantId: setup.tenantId,
        publicKeyPem: setup.publicKeyPem,
        clients: perWorker,
        mode,
        intervalMs,
        deniedReason: setup.deniedReason,
        // Many workers at 10 each overwhelm one control plane with their start-up snapshots (20 x 500 PEPs: a snapshot over 30 s).
        snapshotConcurrency: Number(process.env.SNAPSHOT_CONCURRENCY ?? 10),
      });
      return new Promise<ChildProcess>((resolve, reject) => {
        child.once("message", (message: { ready?: boolean }) =>
          message.ready ? resolve(child) : reject(new Error("a worker could not sync")),
        );
        child.once("exit", (code) => reject(new Error(`a worker exited (${code})`)));
      });
    }),
  );
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

export interface RevocationOptions {
  readonly workers: number;
  readonly perWorker: number;
  /** Revocations measured. */
  readonly rounds: number;
  /** Revocations before those, not counted: the PEPs' code paths warm up (a daemon runs for months). */
  readonly warmup: number;
  readonly mode: "stream" | "long-poll" | "interval" | "push" | "mqtt";
  readonly intervalMs: number;
}

export async function measureRevocation(setup: RevocationSetup, options: RevocationOptions) {
  const children = await startWorkers(setup, options.workers, options.perWorker, options.mode, options.intervalMs);
  const latencies: number[] = [];
  /** CPU per measured round: the control plane (this process) and the PEP workers together. */
  const cpuMs = { server: 0, peps: 0, store: 0 };
  // PROFILE=<file>: a CPU profile of this process (the control plane) over the measured rounds only, not the set-up.
  const profiler = process.env.PROFILE ? new Session() : undefined;
  try {
    for (let round = 0; round < options.warmup + options.rounds; round++) {
      if (profiler && round === options.warmup) {
        profiler.connect();
        await profiler.post("Profiler.enable");
        await profiler.post("Profiler.start");
        children[0]?.send({ profile: "start" });
      }
      const deviceId = setup.deviceIds[round]!;
      const finished = children.map(
        (child) =>
          new Promise<{ done: number[]; cpuMs: number }>((resolve) =>
            child.once("message", (message: { done: number[]; cpuMs: number }) => resolve(message)),
          ),
      );
      for (const child of children) child.send({ watch: deviceId });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const cpu = process.cpuUsage();
      const storeCpu = setup.storeCpuMs?.();
      const revokedAt = now();
      if (setup.trigger) await setup.trigger(deviceId);
      else {
        const response = await fetch(`${setup.url}/v1/devices/${deviceId}/revoke`, {
          method: "POST",
          headers: { authorization: `Bearer ${setup.adminToken}`, "content-type": "application/json" },
          body: JSON.stringify({ reason: "bench" }),
        });
        if (!response.ok) throw new Error(`revoke answered ${response.status}`);
      }
      const these: number[] = [];
      const reports = await Promise.all(finished);
      const ownCpu = process.cpuUsage(cpu);
      const storeMs = storeCpu === undefined ? undefined : setup.storeCpuMs!() - storeCpu;
      for (const { done } of reports) these.push(...done.map((at) => at - revokedAt));
      const pepCpuMs = reports.reduce((sum, report) => sum + report.cpuMs, 0);
      if (round >= options.warmup) {
        latencies.push(...these);
        cpuMs.server += (ownCpu.user + ownCpu.system) / 1000;
        cpuMs.peps += pepCpuMs;
        cpuMs.store += storeMs ?? 0;
      }
      these.sort((a, b) => a - b);
      const figures = [
        ["first", these[0]!],
        ["p50", percentile(these, 50)],
        ["p99", percentile(these, 99)],
        ["max", these.at(-1)!],
      ] as const;
      console.log(
        `  ${options.mode} ${round < options.warmup ? "warm-up" : "round"} ${round + 1}: ${figures.map(([name, ms]) => `${name} ${ms.toFixed(0)}`).join(", ")} ms` +
          ` (CPU: this process ${((ownCpu.user + ownCpu.system) / 1000).toFixed(0)} ms, PEP workers ${pepCpuMs.toFixed(0)} ms` +
          `${storeMs === undefined ? "" : `, DynamoDB Local ${storeMs.toFixed(0)} ms`})`,
      );
    }
    if (profiler) {
      const { profile } = await profiler.post("Profiler.stop");
      await writeFile(process.env.PROFILE!, JSON.stringify(profile));
      profiler.disconnect();
      // And one PEP worker's (its PEPs' share of the CPU), written beside it.
      const written = new Promise<void>((resolve) => {
        const child = children[0];
        if (!child) return resolve();
        const written = (message: { profiled?: string }) => {
          if (!message.profiled) return;
          child.off("message", written);
          resolve();
        };
        child.on("message", written);
      });
      children[0]?.send({ profile: `${process.env.PROFILE}.worker` });
      await written;
    }
  } finally {
    for (const child of children) child.send({ stop: true });
  }
  const sorted = latencies.sort((a, b) => a - b);
  return {
    peps: options.workers * options.perWorker,
    samples: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1)!,
    serverCpuMs: cpuMs.server / options.rounds,
    pepCpuMs: cpuMs.peps / options.rounds,
    storeCpuMs: setup.storeCpuMs ? cpuMs.store / options.rounds : undefined,
  };
}

/** One row of a revocation table. */
export const tableRow = (figures: Awaited<ReturnType<typeof measureRevocation>>) => ({
  PEPs: figures.peps,
  samples: figures.samples,
  p50: +figures.p50.toFixed(1),
  p99: +figures.p99.toFixed(1),
  max: +figures.max.toFixed(1),
  // Where the time goes on a shared machine: the PEPs' own CPU competes with the control plane's (in this process, but in `instances`).
  "CPU/round: this process": +figures.serverCpuMs.toFixed(0),
  "CPU/round: PEPs": +figures.pepCpuMs.toFixed(0),
  ...(figures.storeCpuMs === undefined ? {} : { "CPU/round: DynamoDB Local": +figures.storeCpuMs.toFixed(0) }),
});
