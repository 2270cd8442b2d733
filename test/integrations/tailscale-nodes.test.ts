/**
 * A device's tailnet node mapping (`tailscale/node`) moved to another node, or removed, left the previous node with the
 * posture simroot last pushed for the device (`active`, score 90) for good (review 133): the device's revocation
 * afterwards reached only the new node, and the old one still passed `custom:simrootScore >= 60`.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { documentClient, portsFor, syncPostureToTailscale } from "@simroot/core";
import { startHttpCollector, type HttpCollector } from "../../packages/core/src/integration/http-collector.test-support.ts";
import { committedEvents } from "../support/audit-events.ts";
import { failDeliveryRecords } from "../support/store-faults.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "../support/runtime.ts";

let runtime: TestRuntime;
let tailscale: HttpCollector;
/** A Tailscale that answers after 3 s: a label can move while a run's push is in flight. */
let slow: HttpCollector;
beforeAll(async () => {
  tailscale = await startHttpCollector(() => ({ status: 200, body: {} }));
  slow = await startHttpCollector(() => ({ status: 200, body: {} }), { latencyMs: 3000 });
  runtime = await startTestRuntime();
});
afterAll(async () => {
  await Promise.all([runtime.stop(), tailscale.close(), slow.close()]);
});

/** What Tailscale holds per node and attribute: the last value set (a DELETE removes it). */
function tailnet(collector = tailscale) {
  const held = new Map<string, unknown>();
  for (const request of collector.requests) {
    const [, , , , node, , key] = request.path.split("/");
    const name = `${decodeURIComponent(node!)}/${decodeURIComponent(key!)}`;
    if (request.method === "DELETE") held.delete(name);
    else held.set(name, JSON.parse(request.body).value);
  }
  return held;
}

/** A tenant whose committed events `deliver` hands to the Tailscale sync, each once. */
async function tenantSyncing(collector = tailscale) {
  const acme = await tenantClient(runtime);
  const settings = { tenantId: acme.tenant.id, apiUrl: collector.url, apiKey: "tskey-api-test" };
  const seen = new Set<string>();
  const deliver = async () => {
    for (const event of await committedEvents(runtime, acme.tenant.id, seen)) await syncPostureToTailscale(runtime.ports, settings, event);
  };
  return { acme, deliver };
}

describe("Tailscale posture when a device's node mapping changes", () => {
  it("a revoked device's previous tailnet node is not left with simroot's 'active' posture", async () => {
    const { acme, deliver } = await tenantSyncing();
    const created = await acme.call("POST", "/v1/devices", { imsi: "208011234567870", labels: { "tailscale/node": "nOLDGATEWAY" } });
    expect(created.status).toBe(201);
    await deliver();
    expect(tailnet().get("nOLDGATEWAY/custom:simrootScore")).toBe(90);
    // The SIM moves to a replacement gateway: the mapping follows it.
    const relabelled = await acme.call(
      "PATCH",
      `/v1/devices/${created.json.id}`,
      { labels: { "tailscale/node": "nNEWGATEWAY" } },
      { "if-match": created.headers.get("etag")! },
    );
    expect(relabelled.status).toBe(200);
    await deliver();
    expect((await acme.call("POST", `/v1/devices/${created.json.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    await deliver();
    expect(tailnet().get("nNEWGATEWAY/custom:simrootScore")).toBe(0);
    // The old node still carries simroot's vouching for a device now revoked.
    expect({
      state: tailnet().get("nOLDGATEWAY/custom:simrootState"),
      score: tailnet().get("nOLDGATEWAY/custom:simrootScore"),
    }).not.toEqual({ state: "active", score: 90 });
  });

  it("a node whose mapping is removed is left with no simroot posture", async () => {
    const { acme, deliver } = await tenantSyncing();
    const created = await acme.call("POST", "/v1/devices", { imsi: "208011234567871", labels: { "tailscale/node": "nUNMAPPED" } });
    await deliver();
    expect(tailnet().get("nUNMAPPED/custom:simrootScore")).toBe(90);
    const unmapped = await acme.call(
      "PATCH",
      `/v1/devices/${created.json.id}`,
      { labels: {} },
      { "if-match": created.headers.get("etag")! },
    );
    expect(unmapped.status).toBe(200);
    await deliver();
    expect([...tailnet().keys()].filter((name) => name.startsWith("nUNMAPPED/"))).toEqual([]);
  });

  it("a node released whose audit record failed to commit is still audited, once, when the bus gives the event again", async () => {
    const { acme, deliver } = await tenantSyncing();
    const created = await acme.call("POST", "/v1/devices", { imsi: "208011234567872", labels: { "tailscale/node": "nRELEASED" } });
    await deliver();
    const unmapped = await acme.call(
      "PATCH",
      `/v1/devices/${created.json.id}`,
      { labels: {} },
      { "if-match": created.headers.get("etag")! },
    );
    expect(unmapped.status).toBe(200);
    const updated = (await committedEvents(runtime, acme.tenant.id)).filter((event) => event.subject === created.json.id).pop()!;
    const settings = { tenantId: acme.tenant.id, apiUrl: tailscale.url, apiKey: "tskey-api-test" };
    // One instance of the consumer, whose store times out its commit of the audit record (the ledger's resends too).
    const db = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    let refusing = true;
    failDeliveryRecords(db, acme.tenant.id, "tailscale", () => refusing);
    const ports = portsFor(db, runtime.ports.tables, runtime.bus);
    try {
      await expect(syncPostureToTailscale(ports, settings, updated)).rejects.toThrow();
      expect([...tailnet().keys()].filter((name) => name.startsWith("nRELEASED/"))).toEqual([]);
      refusing = false;
      await syncPostureToTailscale(ports, settings, updated);
      await syncPostureToTailscale(ports, settings, updated);
      const records = (await committedEvents(runtime, acme.tenant.id)).filter(
        (event) => event.type === "integration.tailscale-synced" && (event.data.cause as { eventId: string }).eventId === updated.id,
      );
      expect(records.map((event) => event.data.released)).toEqual(["nRELEASED"]);
    } finally {
      db.destroy();
    }
  });
});

describe("Tailscale posture when a device's label moves while a push to its node is in flight (review 134)", { timeout: 120_000 }, () => {
  // The node was released only in a run's first round: the run that pushed to it, seeing the move in its next round,
  // took the record to the new node, and the former kept simroot's posture for good.
  it("the former node loses simroot's posture, and a revocation leaves no node vouching for the device", async () => {
    const { acme, deliver } = await tenantSyncing(slow);
    const created = await acme.call("POST", "/v1/devices", { imsi: "208011234513401", labels: { "tailscale/node": "nOLDGW134" } });
    expect(created.status).toBe(201);
    // The creation's run starts pushing to the old gateway's node...
    const first = deliver();
    while (!slow.requests.some((request) => request.path.includes("/nOLDGW134/"))) await new Promise((resolve) => setTimeout(resolve, 10));
    // ...while an operator maps the SIM to its replacement gateway.
    const relabelled = await acme.call(
      "PATCH",
      `/v1/devices/${created.json.id}`,
      { labels: { "tailscale/node": "nNEWGW134" } },
      { "if-match": created.headers.get("etag")! },
    );
    expect(relabelled.status).toBe(200);
    await first;
    await deliver(); // the relabel's own run
    expect((await acme.call("POST", `/v1/devices/${created.json.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    await deliver();
    expect(tailnet(slow).get("nNEWGW134/custom:simrootScore")).toBe(0);
    expect({
      state: tailnet(slow).get("nOLDGW134/custom:simrootState"),
      score: tailnet(slow).get("nOLDGW134/custom:simrootScore"),
    }).toEqual({ state: undefined, score: undefined });
  });
});
