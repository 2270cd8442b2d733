import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { claimPort } from "@simroot/local/dynamodb-local";
import { standardWebhookHeaders } from "./support/webhooks.ts";

const main = join(import.meta.dirname, "..", "packages", "local", "src", "main.ts");
const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) child.kill("SIGKILL");
});

/** Starts the control plane as `npm start` does and waits for its banner. */
async function start(dataDir: string, port: number, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, PORT: String(port), SIMROOT_DATA_DIR: dataDir, DYNAMODB_ENDPOINT: "", DYNAMODB_LOCAL_PORT: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.push(child);
  let output = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("simroot is listening")) resolve();
    });
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("exit", (code) => reject(new Error(`exited (${code}): ${output}`)));
  });
  const key = /^\s+(sr_key_\S+)$/m.exec(output)?.[1];
  const dynamoPort = Number(/dynamodb: http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
  return { child, output, key, dynamoPort };
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => resolve(socket.destroy() === socket));
    socket.once("error", () => resolve(false));
  });

async function eventually<T>(probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("npm start", () => {
  it("names the setting when the feed hub's MQTT port is taken or is no port, and exits (review 65)", { timeout: 60_000 }, async () => {
    const held = createServer();
    const heldPort = await claimPort();
    await new Promise<void>((resolve) => held.listen(heldPort, "127.0.0.1", resolve));
    try {
      const dataDir = await mkdtemp(join(tmpdir(), "simroot-start-"));
      await expect(start(dataDir, await claimPort(), { SIMROOT_FEED_MQTT_PORT: String(heldPort) })).rejects.toThrow(
        new RegExp(`MQTT port ${heldPort} \\(SIMROOT_FEED_MQTT_PORT\\) is in use`),
      );
      await expect(start(dataDir, await claimPort(), { SIMROOT_FEED_MQTT_PORT: "abc" })).rejects.toThrow(
        /SIMROOT_FEED_MQTT_PORT is "abc": a port from 1 to 65535/,
      );
    } finally {
      held.close();
    }
  });

  it("keeps devices across restarts, survives kill -9, and applies an event acknowledged just before it exactly once", {
    timeout: 90_000,
  }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "simroot-start-"));
    const port = await claimPort();
    const base = `http://127.0.0.1:${port}`;

    // The feed hub's MQTT port pinned: PEPs on the push channel keep their URL across restarts (review 64).
    const mqttPort = await claimPort();
    const first = await start(dataDir, port, { SIMROOT_FEED_MQTT_PORT: String(mqttPort) });
    expect(first.key).toMatch(/^sr_key_/);
    expect(first.output).toContain(`feed mqtt: mqtt://127.0.0.1:${mqttPort}`);
    const auth = { authorization: `Bearer ${first.key}` };
    expect((await fetch(`${base}/health`)).status).toBe(200);

    const json = { ...auth, "content-type": "application/json" };
    const device = (await (
      await fetch(`${base}/v1/devices`, { method: "POST", headers: json, body: JSON.stringify({ imsi: "234100000000001" }) })
    ).json()) as { id: string };
    const { source, credentials } = (await (
      await fetch(`${base}/v1/sources`, { method: "POST", headers: json, body: JSON.stringify({ name: "core", format: "simroot" }) })
    ).json()) as {
      source: { ingestPath: string };
      credentials: { webhookSecret: string };
    };
    const body = JSON.stringify([
      {
        type: "sim.attached",
        dedupeKey: "attach-1",
        occurredAt: new Date().toISOString(),
        device: { imsi: "234100000000001" },
        sourceType: "test",
        data: { bearer: "cellular", ipv4: "10.1.2.3" },
      },
    ]);
    const accepted = await fetch(`${base}${source.ingestPath}`, {
      method: "POST",
      headers: standardWebhookHeaders(credentials.webhookSecret, body),
      body,
    });
    expect(accepted.status).toBe(202);
    // Acknowledged: now pull the plug before anything else can happen.
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
    // DynamoDB Local's JVM goes with its parent rather than lingering on the port.
    expect(
      await eventually(
        () => portOpen(first.dynamoPort),
        (open) => !open,
      ),
    ).toBe(false);

    const second = await start(dataDir, port, { SIMROOT_FEED_MQTT_PORT: String(mqttPort) });
    expect(second.key).toBeUndefined(); // the bootstrap key is printed on the first run only
    expect(second.output).toContain(`feed mqtt: mqtt://127.0.0.1:${mqttPort}`);
    const fetched = await fetch(`${base}/v1/devices/${device.id}`, { headers: auth });
    expect(fetched.status).toBe(200);
    expect(await fetched.json()).toMatchObject({ id: device.id, imsi: "234100000000001" });

    const attaches = () =>
      fetch(`${base}/v1/devices/${device.id}/timeline`, { headers: auth })
        .then((r) => r.json() as Promise<{ items: { type: string }[] }>)
        .then((page) => page.items.filter((entry) => entry.type === "sim.attached"));
    expect(await eventually(attaches, (items) => items.length > 0)).toHaveLength(1);
    const pending = () =>
      fetch(`${base}/health`)
        .then((r) => r.json() as Promise<{ components: { bus: { detail: { pending: number } } } }>)
        .then((h) => h.components.bus.detail.pending);
    expect(await eventually(pending, (count) => count === 0)).toBe(0);
    expect(await attaches()).toHaveLength(1);
    const sessions = (await (await fetch(`${base}/v1/devices/${device.id}/sessions`, { headers: auth })).json()) as {
      items: { ipv4: string }[];
    };
    expect(sessions.items).toMatchObject([{ ipv4: "10.1.2.3" }]);

    second.child.kill("SIGTERM");
    const code = await new Promise((resolve) => second.child.once("exit", resolve));
    expect(code).toBe(0);
    expect(await portOpen(second.dynamoPort)).toBe(false);
  });
});
