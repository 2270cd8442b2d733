/**
 * `npm run demo`: a living fleet within a minute. Starts the control plane (fresh data under
 * `.data/demo`), registers a few hundred devices and the policies that fit them, creates one
 * ingestion source per webhook format, starts one simroot-pep per site (each following its
 * site's narrowed feed and reporting flows), then keeps an operator core and device traffic
 * going, with an anomaly now and then: a device roaming abroad, changing modem, or calling an
 * unfamiliar server. Open the printed console link. Ctrl-C stops everything. Its data is its own (`DEMO_DATA_DIR`, default
 * `.data/demo`: data-dir.ts), never the control plane's `SIMROOT_DATA_DIR`.
 */
import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { createTenantWithAdminKey } from "@simroot/core";
import { startLocalRuntime } from "../runtime.ts";
import { demoDataDir, freshDemoData } from "./data-dir.ts";
import { demoFleet, demoPolicies, fleets, sites, unfamiliar, type DemoDevice } from "./fleet.ts";
import { operatorCore, type DemoSource } from "./operator-core.ts";
import { startPeps, type DemoPep } from "./peps.ts";

const count = Number(process.env.DEMO_DEVICES ?? 300);
const port = Number(process.env.PORT ?? 3000);
const dataDir = demoDataDir();
const formats = ["simroot", "camara", "nef", "datastreamer", "supersim", "eim"] as const;

await freshDemoData(dataDir);
const runtime = await startLocalRuntime({ dataDir, port, hostname: "127.0.0.1", logRequests: false });
const { tenant, token } = await createTenantWithAdminKey(runtime.ports, "demo");
const baseUrl = runtime.url;
if (!baseUrl) throw new Error("the demo needs the API listening");

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

async function inParallel<T>(items: readonly T[], width: number, run: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await run(items[next++]!);
    }),
  );
}

const sources: Record<string, DemoSource> = {};
for (const format of formats) {
  const created = await call<{ source: { id: string }; credentials: Record<string, string> }>("POST", "/v1/sources", {
    name: `${format} (simulated)`,
    format,
    ...(format === "supersim" ? { credentials: { twilioAuthToken: "demo-twilio-auth-token-0123456789" } } : {}),
  });
  sources[format] = { id: created.source.id, format, credentials: created.credentials };
}
for (const policy of demoPolicies) await call("POST", "/v1/policies", policy);

const fleet = demoFleet(count);
await inParallel(fleet, 8, async (device) => {
  const created = await call<{ id: string }>("POST", "/v1/devices", {
    name: device.name,
    eid: device.eid,
    iccids: [device.iccid],
    imsi: device.imsi,
    imei: device.imei,
    msisdn: device.msisdn,
    labels: device.labels,
    imeiLock: device.labels.fleet === "meters",
  });
  device.id = created.id;
});

const core = operatorCore(baseUrl, sources);
// Every device attaches once (so it holds an address), and the first few go through every format.
await inParallel(fleet, 6, (device) => core.everyday(device).catch(() => undefined));
for (const device of fleet.slice(0, 4)) await core.everyFormat(device).catch((error) => console.error(String(error)));

const pepKey = await call<{ token: string }>("POST", "/v1/keys", { name: "demo peps", role: "pep" });
const feedKey = await call<{ keys: { publicKeyPem: string }[] }>("GET", "/v1/feed/keys");
const keyFile = resolve(dataDir, "feed-public-key.pem");
await writeFile(keyFile, feedKey.keys[0]!.publicKeyPem);
const peps: DemoPep[] = await startPeps({ url: baseUrl, apiKey: pepKey.token, keyFile, tenantId: tenant.id, sites, dataDir });

const bySite = new Map(peps.map((pep) => [pep.site, pep]));
const astray = new Set<DemoDevice>();
const random = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)]!;

async function connect(device: DemoDevice, destination: string, port: number) {
  const pep = bySite.get(device.labels.site);
  if (!pep || !device.id) return;
  await fetch(`http://127.0.0.1:${pep.adminPort}/v1/decide`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      deviceId: device.id,
      destination: /^\d/.test(destination) ? { ip: destination } : { fqdn: destination },
      port,
      protocol: "tcp",
      bearer: device.labels.fleet === "cameras" ? random(["private-5g", "wifi", "cellular"]) : "cellular",
    }),
  }).catch(() => undefined);
}

const timers = [
  // Devices talk to their service, and the ones gone astray to places they never went before.
  setInterval(() => {
    for (let i = 0; i < 25; i++) {
      const device = random(fleet);
      const usual = fleets[device.labels.fleet as keyof typeof fleets];
      void connect(device, usual.destination, usual.port);
    }
    for (const device of astray) void connect(device, random(unfamiliar), 443);
  }, 500),
  // The operator core reports everyday events, and now and then something unusual.
  setInterval(() => {
    void core.everyday(random(fleet)).catch(() => undefined);
    if (Math.random() < 0.1) void core.unusual(random(fleet)).catch(() => undefined);
  }, 300),
  // Every 20 s a device goes astray for a minute: a labelled anomaly.
  setInterval(() => {
    const device = random(fleet);
    astray.add(device);
    console.log(`anomaly: ${device.name} (${device.id}) starts calling unfamiliar servers`);
    setTimeout(() => astray.delete(device), 60_000).unref();
  }, 20_000),
];

const link = `${baseUrl}/console/#key=${encodeURIComponent(token)}`;
console.log(
  [
    "",
    `simroot demo: ${count} devices, ${formats.length} webhook formats, ${peps.length} enforcement points (one per site).`,
    "",
    `  Console:  ${link}`,
    `  API key:  ${token}`,
    `  PEPs:     ${peps.map((pep) => `${pep.site} http://127.0.0.1:${pep.adminPort}/healthz`).join(", ")}`,
    "",
    "Look at: Fleet (states, bearers, countries change live), a device's timeline, the Traffic map",
    "(denied and new edges in red and orange; what-if on any edge), Policies (preview before saving),",
    "Audit (verify the chain; sources and their health). Quarantine a device and watch its PEP deny it.",
    "Ctrl-C stops the demo.",
  ].join("\n"),
);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  for (const timer of timers) clearInterval(timer);
  for (const pep of peps) pep.stop();
  await runtime.stop();
  process.exit(0);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
