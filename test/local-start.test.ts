import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { claimPort } from "@simroot/local/dynamodb-local";

const main = join(import.meta.dirname, "..", "packages", "local", "src", "main.ts");
const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) child.kill("SIGKILL");
});

/** Starts the control plane as `npm start` does and waits for its banner. */
async function start(dataDir: string, port: number) {
  const child = spawn(process.execPath, [main], {
    env: { ...process.env, PORT: String(port), SIMROOT_DATA_DIR: dataDir, DYNAMODB_ENDPOINT: "", DYNAMODB_LOCAL_PORT: "" },
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
  it("keeps devices across restarts, survives kill -9, and applies an acknowledged event exactly once", { timeout: 90_000 }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "simroot-start-"));
    const port = await claimPort();
    const base = `http://127.0.0.1:${port}`;

    const first = await start(dataDir, port);
    expect(first.key).toMatch(/^sr_key_/);
    const auth = { authorization: `Bearer ${first.key}` };
    expect((await fetch(`${base}/health`)).status).toBe(200);

    const response = await fetch(`${base}/v1/devices`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ imsi: "234100000000001", labels: { fleet: "meters" } }),
    });
    expect(response.status).toBe(201);
    const device = (await response.json()) as { id: string };
    // Acknowledged: now pull the plug before anything else can happen.
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.once("exit", resolve));
    // DynamoDB Local's JVM goes with its parent rather than lingering on the port.
    expect(await eventually(() => portOpen(first.dynamoPort), (open) => !open)).toBe(false);

    const second = await start(dataDir, port);
    expect(second.key).toBeUndefined(); // the bootstrap key is printed on the first run only
    const fetched = await fetch(`${base}/v1/devices/${device.id}`, { headers: auth });
    expect(fetched.status).toBe(200);
    expect(await fetched.json()).toMatchObject({ id: device.id, imsi: "234100000000001" });

    const timeline = () => fetch(`${base}/v1/devices/${device.id}/timeline`, { headers: auth }).then((r) => r.json() as Promise<{ items: unknown[] }>);
    expect((await eventually(timeline, (page) => page.items.length > 0)).items).toHaveLength(1);
    const health = (await (await fetch(`${base}/health`)).json()) as { components: { bus: { detail: { pending: number } } } };
    expect(health.components.bus.detail.pending).toBe(0);
    expect((await timeline()).items).toHaveLength(1);

    second.child.kill("SIGTERM");
    const code = await new Promise((resolve) => second.child.once("exit", resolve));
    expect(code).toBe(0);
    expect(await portOpen(second.dynamoPort)).toBe(false);
  });
});
