/**
 * A device's tailnet node mapping (`tailscale/node`) moved to another node, or removed, left the previous node with the
 * posture simroot last pushed for the device (`active`, score 90) for good (review 133): the device's revocation
 * afterwards reached only the new node, and the old one still passed `custom:simrootScore >= 60`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syncPostureToTailscale } from "@simroot/core";
import { startHttpCollector, type HttpCollector } from "../../packages/core/src/integration/http-collector.test-support.ts";
import { committedEvents } from "../support/audit-events.ts";
import { startTestRuntime, tenantClient, type TestRuntime } from "../support/runtime.ts";

let runtime: TestRuntime;
let tailscale: HttpCollector;
beforeAll(async () => {
  tailscale = await startHttpCollector(() => ({ status: 200, body: {} }));
  runtime = await startTestRuntime();
});
afterAll(async () => {
  await Promise.all([runtime.stop(), tailscale.close()]);
});

/** What Tailscale holds per node and attribute: the last value set (a DELETE removes it). */
function tailnet() {
  const held = new Map<string, unknown>();
  for (const request of tailscale.requests) {
    const [, , , , node, , key] = request.path.split("/");
    const name = `${decodeURIComponent(node!)}/${decodeURIComponent(key!)}`;
    if (request.method === "DELETE") held.delete(name);
    else held.set(name, JSON.parse(request.body).value);
  }
  return held;
}

/** A tenant whose committed events `deliver` hands to the Tailscale sync, each once. */
async function tenantSyncing() {
  const acme = await tenantClient(runtime);
  const settings = { tenantId: acme.tenant.id, apiUrl: tailscale.url, apiKey: "tskey-api-test" };
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
});
