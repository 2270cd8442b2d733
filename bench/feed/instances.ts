/**
 * Revocation across control-plane instances that share nothing but the store (and, with the
 * push channel, the feed hub): instance A takes the revocation, PEPs follow instances B and C,
 * each a process of its own as Lambda instances are.
 *   today:            B and C learn of A's commit by polling the head every 500 ms
 *   push, long polls: A publishes the commit on the hub, B and C wake their long polls at once
 *   push, AWS shape:  the PEPs hold no long poll; told by the hub, they poll B or C briefly
 *   push over MQTT:   the same, each PEP subscribed over MQTT with its key through the feed's authorizer (`--feed push`)
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startInstance, type Instance } from "../../test/support/instances.ts";
import { measureRevocation, tableRow, type RevocationOptions } from "./revocation.ts";

interface InstancesSetup {
  readonly endpoint: string;
  readonly adminToken: string;
  readonly tenantId: string;
  readonly deviceIds: readonly string[];
  readonly workers: number;
  readonly perWorker: number;
  readonly rounds: number;
  readonly warmup: number;
}

async function keys(url: string, adminToken: string) {
  const headers = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
  const pep = (await (
    await fetch(`${url}/v1/keys`, { method: "POST", headers, body: JSON.stringify({ name: "edge", role: "pep" }) })
  ).json()) as { token: string };
  const published = (await (await fetch(`${url}/v1/feed/keys`, { headers: { authorization: `Bearer ${pep.token}` } })).json()) as {
    keys: { publicKeyPem: string }[];
  };
  return { pepToken: pep.token, publicKeyPem: published.keys[0]!.publicKeyPem };
}

export async function measureInstances(setup: InstancesSetup) {
  const keyDir = await mkdtemp(join(tmpdir(), "simroot-bench-instances-"));
  const start = { dynamoEndpoint: setup.endpoint, tablePrefix: "simroot-", feedSigningKeyPath: join(keyDir, "feed-signing-key.pem") };
  const modes: { name: string; shared: boolean; mode: RevocationOptions["mode"] }[] = [
    { name: "baseline: today (B, C poll the head every 500 ms)", shared: false, mode: "long-poll" },
    { name: "push channel, PEPs long-poll B and C", shared: true, mode: "long-poll" },
    { name: "push channel, PEPs hold no poll (AWS shape)", shared: true, mode: "push" },
    { name: "push channel over MQTT, as simroot-pep --feed push", shared: true, mode: "mqtt" },
  ];
  const rows: Record<string, Record<string, number>> = {};
  let used = 0;
  for (const { name, shared, mode } of modes) {
    const env: Record<string, string> = shared ? {} : { SIMROOT_FEED_HEAD_POLL_MS: "500" };
    const a = await startInstance(start, env);
    const started: Instance[] = [a];
    try {
      const hub = shared ? { feedHubUrl: a.feedHubUrl } : {};
      const b = await startInstance({ ...start, ...hub }, env);
      started.push(b);
      const c = await startInstance({ ...start, ...hub }, env);
      started.push(c);
      const credentials = await keys(a.url, setup.adminToken);
      console.log(`instances: ${name}...`);
      const figures = await measureRevocation(
        {
          url: a.url,
          adminToken: setup.adminToken,
          tenantId: setup.tenantId,
          ...credentials,
          deviceIds: setup.deviceIds.slice(used),
          pepUrls: [b.url, c.url],
          hubUrl: a.feedHubUrl,
          ...(a.feedMqttUrl ? { mqttUrl: a.feedMqttUrl } : {}),
        },
        { workers: setup.workers, perWorker: setup.perWorker, rounds: setup.rounds, warmup: setup.warmup, mode, intervalMs: 0 },
      );
      used += setup.rounds + setup.warmup;
      rows[name] = tableRow(figures);
    } finally {
      await Promise.all(started.map((instance) => instance.stop()));
    }
  }
  return rows;
}
