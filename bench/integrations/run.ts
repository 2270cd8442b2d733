/**
 * bench/integrations: how fast and how many calls simroot's verdict takes to reach AWS IoT Core
 * and Tailscale, against loopback servers speaking their APIs (real @aws-sdk/client-iot, real
 * fetch), each figure beside its baseline from the same run.
 *   npm run bench:integrations    (CHANGES=200 DEVICES=20 LATENCY_MS=10)
 *
 * LATENCY_MS is added by the loopback servers to every request, standing in for the round trip
 * to AWS or Tailscale; the machine is shared, so read ratios, not absolute numbers.
 */
import { IoTClient } from "@aws-sdk/client-iot";
import { createTenantWithAdminKey, syncDeviceToIot, syncPostureToTailscale, type DomainEvent, type IotControl } from "@simroot/core";
import { startLocalRuntime } from "@simroot/local/runtime";
import { sdkIotControl } from "../../packages/core/src/integration/iot/iot-sdk.ts";
import { startHttpCollector } from "../../packages/core/src/integration/http-collector.test-support.ts";
import { startIotLoopback } from "../../packages/core/src/integration/iot/iot-loopback.test-support.ts";
import { committedEvents } from "../../test/support/audit-events.ts";

const changes = Number(process.env.CHANGES ?? 200);
const deviceCount = Number(process.env.DEVICES ?? 20);
const latencyMs = Number(process.env.LATENCY_MS ?? 10);

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const figure = (values: number[]) => `p50 ${percentile(values, 50).toFixed(1)} ms, p99 ${percentile(values, 99).toFixed(1)} ms`;

const runtime = await startLocalRuntime({});
const iotBatched = await startIotLoopback({ latencyMs });
const iotUnbatched = await startIotLoopback({ latencyMs });
const tailscale = await startHttpCollector(() => ({ status: 200, body: {} }), { latencyMs });
const tailscaleAll = await startHttpCollector(() => ({ status: 200, body: {} }), { latencyMs });
try {
  const { tenant, token } = await createTenantWithAdminKey(runtime.ports, "bench");
  const call = async <Body>(method: string, path: string, body?: unknown) => {
    const response = await runtime.app.request(path, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${path} answered ${response.status}`);
    return response.json() as Promise<Body>;
  };
  const client = (endpoint: string) =>
    new IoTClient({ endpoint, region: "eu-west-1", credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" } });
  const batched = sdkIotControl(client(iotBatched.endpoint));
  const unbatched = sdkIotControl(client(iotUnbatched.endpoint), { batch: false });
  const settings = { tenantId: tenant.id, prefix: "simroot-" };
  const tailscaleSettings = (url: string) => ({ tenantId: tenant.id, apiUrl: url, apiKey: "tskey-bench" });

  const devices: string[] = [];
  for (let index = 0; index < deviceCount; index++) {
    const imsi = `2080199${String(index).padStart(8, "0")}`;
    devices.push(
      (await call<{ id: string }>("POST", "/v1/devices", { imsi, labels: { fleet: "meters", "tailscale/node": `n${index}CNTRL` } })).id,
    );
  }
  const seen = new Set<string>();
  const fresh = async () => {
    const events = await committedEvents(runtime, tenant.id, seen);
    return events.filter((event) => !event.type.startsWith("integration."));
  };
  const deliver = async (events: DomainEvent[], control: IotControl) => {
    for (const event of events) await syncDeviceToIot(runtime.ports, control, settings, event);
  };
  const setup = await fresh();
  await deliver(setup, batched);
  await deliver(setup, unbatched);
  for (const event of setup) {
    await syncPostureToTailscale(runtime.ports, tailscaleSettings(tailscale.url), event);
  }

  // 1. Per change (quarantine or reinstate, alternating per device): consumer latency and API calls, batched vs not.
  const iotLatency = { batched: [] as number[], unbatched: [] as number[] };
  const iotCalls = { batched: 0, unbatched: 0 };
  const postureLatency = { changed: [] as number[], all: [] as number[] };
  const postureCalls = { changed: 0, all: 0 };
  for (let index = 0; index < changes; index++) {
    const id = devices[index % deviceCount]!;
    const action = Math.floor(index / deviceCount) % 2 === 0 ? "quarantine" : "reinstate";
    await call("POST", `/v1/devices/${id}/${action}`, { reason: "bench" });
    const events = await fresh();
    // Alternate which variant goes first, so neither always meets the colder store.
    const iotVariants = [
      ["batched", batched, iotBatched],
      ["unbatched", unbatched, iotUnbatched],
    ] as const;
    for (const [name, control, server] of index % 2 === 0 ? iotVariants : [...iotVariants].reverse()) {
      const before = server.requests.length;
      const start = performance.now();
      // A separate delivery per variant: each sees the event as new.
      for (const event of events) await syncDeviceToIot(runtime.ports, control, settings, { ...event, id: `${event.id}-${name}` });
      iotLatency[name].push(performance.now() - start);
      iotCalls[name] += server.requests.length - before;
    }
    const postureVariants = [
      ["changed", tailscale, true],
      ["all", tailscaleAll, false],
    ] as const;
    for (const [name, server, onlyChanged] of index % 2 === 0 ? postureVariants : [...postureVariants].reverse()) {
      const before = server.requests.length;
      const start = performance.now();
      for (const event of events) {
        await syncPostureToTailscale(
          runtime.ports,
          tailscaleSettings(server.url),
          { ...event, id: `${event.id}-${name}` },
          { onlyChanged },
        );
      }
      postureLatency[name].push(performance.now() - start);
      postureCalls[name] += server.requests.length - before;
    }
  }

  // 2. End to end through the bus and the very consumers Lambda runs: API change -> the request at the loopback.
  Object.assign(process.env, {
    SIMROOT_IOT_TENANT_ID: tenant.id,
    SIMROOT_IOT_ENDPOINT: iotBatched.endpoint,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "AKIDEXAMPLE",
    AWS_SECRET_ACCESS_KEY: "secret",
    SIMROOT_TAILSCALE_TENANT_ID: tenant.id,
    SIMROOT_TAILSCALE_API_URL: tailscale.url,
    SIMROOT_TAILSCALE_API_KEY: "tskey-bench",
  });
  const endToEnd = { iot: [] as number[], posture: [] as number[] };
  const rounds = Math.min(changes, 50);
  for (let index = 0; index < rounds; index++) {
    const id = devices[index % deviceCount]!;
    const node = `n${index % deviceCount}CNTRL`;
    const quarantined = iotBatched.things.get(id)!.groups.has("simroot-quarantined");
    const [action, state] = quarantined ? ["reinstate", "active"] : ["quarantine", "quarantined"];
    const iotBefore = iotBatched.requests.length;
    const postureBefore = tailscale.requests.length;
    const start = performance.now();
    await call("POST", `/v1/devices/${id}/${action}`, { reason: "bench" });
    const moved = new Promise<number>((resolve) => {
      const poll = () => {
        const hit = iotBatched.requests
          .slice(iotBefore)
          .some((request) => request.operation === "UpdateThingGroupsForThing" && request.body.thingName === id);
        if (hit) resolve(performance.now() - start);
        else setTimeout(poll, 1);
      };
      poll();
    });
    const posture = tailscale
      .waitFor(
        (request) =>
          tailscale.requests.indexOf(request) >= postureBefore &&
          request.path.startsWith(`/api/v2/device/${node}/attributes/custom%3AsimrootState`) &&
          JSON.parse(request.body).value === state,
      )
      .then((request) => request.at - start);
    const [iotMs, postureMs] = await Promise.all([moved, posture]);
    endToEnd.iot.push(iotMs);
    endToEnd.posture.push(postureMs);
  }
  await fresh();

  console.log(
    `integrations bench: ${changes} device changes over ${deviceCount} devices, ${latencyMs} ms added per loopback request (shared 2-core machine: read ratios)`,
  );
  console.log("\nevent -> AWS IoT actions (consumer, real SDK, loopback IoT control plane)");
  console.log(
    `  batched (UpdateThingGroupsForThing):   ${figure(iotLatency.batched)}, ${(iotCalls.batched / changes).toFixed(2)} API calls per change`,
  );
  console.log(
    `  baseline, add + remove per group:      ${figure(iotLatency.unbatched)}, ${(iotCalls.unbatched / changes).toFixed(2)} API calls per change`,
  );
  console.log("\nevent -> Tailscale posture attributes (consumer, loopback Tailscale API)");
  console.log(
    `  only the attributes that changed:      ${figure(postureLatency.changed)}, ${(postureCalls.changed / changes).toFixed(2)} API calls per change`,
  );
  console.log(
    `  baseline, every attribute every time:  ${figure(postureLatency.all)}, ${(postureCalls.all / changes).toFixed(2)} API calls per change`,
  );
  console.log(`\nend to end through the local bus and the consumers (${rounds} changes: API call -> request at the loopback)`);
  console.log(`  change -> IoT thing group moved:       ${figure(endToEnd.iot)}`);
  console.log(`  change -> Tailscale state attribute:   ${figure(endToEnd.posture)}`);
  console.log('  (no baseline: the figure to hold is "within seconds")');
} finally {
  await Promise.all([runtime.stop(), iotBatched.close(), iotUnbatched.close(), tailscale.close(), tailscaleAll.close()]);
}
