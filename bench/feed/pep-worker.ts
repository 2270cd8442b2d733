/**
 * A bench worker process: runs `clients` PEP sync clients (each its own replicated view and
 * engine, as separate simroot-pep daemons would) against the control plane, and reports, for
 * each revocation it is told to watch, when every one of its PEPs first denies that device.
 *   mode "stream":    simroot's feed streamed (one connection carries every change and re-signed head)
 *   mode "long-poll": simroot's feed (long poll, answered as a change commits)
 *   mode "interval":  the same feed polled every `intervalMs` without waiting (a periodic-sync baseline)
 *   mode "push":      no long poll: short polls when the feed hub (the laptop's IoT Core) says the head moved
 *   mode "mqtt":      the same, told over MQTT through the feed's authorizer, as PEPs are by IoT Core (`--feed push`)
 */
import { createPublicKey } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { FeedSync, hubTrigger, mqttTrigger, nodeGet, PepEngine, PepState, type FeedGet } from "@simroot/pep";

interface Setup {
  url: string;
  apiKey: string;
  tenantId: string;
  publicKeyPem: string;
  clients: number;
  mode: "stream" | "long-poll" | "interval" | "push" | "mqtt";
  intervalMs: number;
  /** The feed hub, for mode "push"; its MQTT side, for mode "mqtt". */
  hubUrl?: string;
  mqttUrl?: string;
  /** The decision reason that counts as enforced (bench/detect watches quarantines). */
  deniedReason?: string;
  /** Initial snapshots in flight at once per worker (default 10). */
  snapshotConcurrency?: number;
}

const now = () => performance.timeOrigin + performance.now();
const send = (message: unknown) => process.send!(message);

process.once("message", async (setup: Setup) => {
  const publicKeys = [createPublicKey(setup.publicKeyPem)];
  let watching: { deviceId: string; deniedAt: (number | undefined)[]; pending: number; cpu: NodeJS.CpuUsage } | undefined;

  const peps = Array.from({ length: setup.clients }, (_, index) => {
    const state = new PepState(setup.tenantId);
    const engine = new PepEngine(state);
    const check = () => {
      if (!watching || watching.deniedAt[index] !== undefined) return;
      const decision = engine.decide({ deviceId: watching.deviceId, destination: { ip: "10.0.0.1" }, port: 443, protocol: "tcp" });
      if (decision.reason === (setup.deniedReason ?? "deny.revoked")) {
        watching.deniedAt[index] = now();
        if (--watching.pending === 0) {
          const cpu = process.cpuUsage(watching.cpu);
          send({ done: watching.deniedAt, cpuMs: (cpu.user + cpu.system) / 1000 });
        }
      }
    };
    // A periodic poller waits for its next tick (spread over the interval) before each request.
    const offset = Math.random() * setup.intervalMs;
    const transport = nodeGet();
    const onTick: FeedGet = async (request) => {
      const wait = setup.intervalMs - ((Date.now() - offset) % setup.intervalMs);
      await sleep(wait, undefined, { signal: request.signal }).catch(() => {});
      return transport(request);
    };
    const trigger =
      setup.mode === "push"
        ? hubTrigger(setup.hubUrl!)
        : setup.mode === "mqtt"
          ? mqttTrigger({ url: setup.mqttUrl!, apiKey: setup.apiKey, name: `bench-${process.pid}-${index}` })
          : undefined;
    const sync = new FeedSync({
      url: setup.url,
      apiKey: setup.apiKey,
      publicKeys,
      state,
      waitSeconds: setup.mode === "long-poll" || setup.mode === "stream" ? 20 : 0,
      stream: setup.mode === "stream",
      limit: 5000,
      transport: setup.mode === "interval" ? onTick : transport,
      onChange: check,
      ...(trigger ? { trigger } : {}),
    });
    return { sync, state, check };
  });

  // Snapshots first, a few at a time, then the sync loops.
  const batch = setup.snapshotConcurrency ?? 10;
  for (let start = 0; start < peps.length; start += batch)
    await Promise.all(peps.slice(start, start + batch).map((pep) => pep.sync.snapshot()));
  for (const pep of peps) pep.sync.start();
  send({ ready: peps.every((pep) => pep.state.version > 0) });

  let profiler: Session | undefined;
  process.on("message", async (message: { watch?: string; stop?: boolean; profile?: "start" | string }) => {
    // The bench's PROFILE: a CPU profile of this worker's PEPs over the measured rounds.
    if (message.profile === "start") {
      profiler = new Session();
      profiler.connect();
      await profiler.post("Profiler.enable");
      await profiler.post("Profiler.start");
    } else if (message.profile && profiler) {
      const { profile } = await profiler.post("Profiler.stop");
      await writeFile(message.profile, JSON.stringify(profile));
      profiler.disconnect();
      send({ profiled: message.profile });
    }
    if (message.watch) {
      watching = { deviceId: message.watch, deniedAt: peps.map(() => undefined), pending: peps.length, cpu: process.cpuUsage() };
      for (const pep of peps) pep.check();
    }
    if (message.stop) void Promise.all(peps.map((pep) => pep.sync.stop())).then(() => process.exit(0));
  });
});
