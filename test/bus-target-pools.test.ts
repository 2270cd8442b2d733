/**
 * The webhooks consumer makes each delivery's first attempt inline (core webhook/delivery.ts `dispatchToWebhooks`, 15 s
 * receiver timeout), inside the handler invocation the bus gives it. Locally the bus had 32 slots for every target and
 * tenant together: one tenant whose subscription points at a receiver that never answers, making a few dozen changes,
 * held every slot for 15 s at a time, and another tenant's operator events (a suspension, a revocation) waited that long
 * to be applied (review 108). Each target now has its own slots, as each is a function of its own in AWS.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coreFact, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
let silent: Server;
const sockets: Socket[] = [];
beforeAll(async () => {
  runtime = await startTestRuntime({ webhookWorkerMs: 0 });
  // A receiver that accepts connections and never answers.
  silent = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  silent.close();
  await runtime.stop();
});

describe("one tenant's silent webhook receiver (review 108)", () => {
  it("does not hold back another tenant's reported suspension", async () => {
    const noisy = await tenantClient(runtime, "noisy-hooks");
    const quiet = await tenantClient(runtime, "quiet-hooks");
    const address = silent.address() as { port: number };
    const hook = await noisy.call("POST", "/v1/webhooks", {
      url: `http://127.0.0.1:${address.port}/hook`,
      pattern: { source: ["simroot"], "detail-type": ["device.registered"] },
    });
    expect(hook.status, hook.text).toBe(201);
    const device = await quiet.call("POST", "/v1/devices", { name: "victim", imsi: "208019990001081" });
    expect(device.status, device.text).toBe(201);
    const { source, credentials } = (await quiet.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    await runtime.settled();

    // The noisy tenant registers 40 devices (well within one key's 6,000 requests a minute).
    for (let n = 0; n < 40; n++) {
      const made = await noisy.call("POST", "/v1/devices", { name: `d${n}`, imsi: `20801888${String(n).padStart(7, "0")}` });
      expect(made.status, made.text).toBe(201);
    }
    // The quiet tenant's operator reports a suspension.
    const text = JSON.stringify([
      coreFact("device.suspended", "208019990001081", { reason: "fraud" }, new Date(Date.now() + 1_000).toISOString(), "r108-susp"),
    ]);
    const posted = await runtime.app.request(source.ingestPath, {
      method: "POST",
      headers: standardWebhookHeaders(credentials.webhookSecret, text),
      body: text,
    });
    expect(posted.status).toBe(202);
    const started = Date.now();
    let state = "";
    while (Date.now() - started < 30_000) {
      state = (await quiet.call("GET", `/v1/devices/${device.json.id}`)).json.state;
      if (state === "suspended") break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const waited = Date.now() - started;
    expect(state).toBe("suspended");
    expect(waited).toBeLessThan(5_000);
  }, 90_000);
});
