/**
 * What a PEP ends with when changes race its feed, found by a stress run (the sixteenth helper review):
 * - a narrowed feed's version can carry a device entering the site and another device's release: the one entering
 *   must come with the addresses it holds (and the one leaving without them), whatever else its version carries;
 * - a snapshot's device listing can miss a change committed just before the snapshot's version (the index lags by
 *   milliseconds); the replay at its end carries it, however long the PEP takes to page through.
 */
import { createPublicKey } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import {
  actOnDevice,
  applyOperatorEvent,
  documentClient,
  feedDeltas,
  feedSnapshot,
  ingestedEvent,
  memorySigner,
  portsFor,
  readDevice,
  registerDevice,
  updateDevice,
  type Ports,
} from "@simroot/core";
import { deviceKey } from "@simroot/core/device/keys";
import { PepState } from "@simroot/pep/state";
import { FeedSync } from "@simroot/pep/sync";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { refuseSequencerReads } from "./support/store-faults.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

describe("a narrowed feed's version carrying a device's relabel and another device's release", () => {
  it.each([
    ["enters", true],
    ["leaves", false],
  ])(
    "gives the addresses of a device that %s the site as a fresh snapshot does",
    async (_, enters) => {
      const admin = await tenantClient(runtime, `narrowcut${enters}`);
      const tenantId = admin.tenant.id;
      const pep = (await admin.call("POST", "/v1/keys", { name: "edge", role: "pep" })).json.token as string;
      const publicKey = createPublicKey((await call(runtime, pep, "GET", "/v1/feed/keys")).json.keys[0].publicKeyPem);
      const ctx = { tenantId, actor: "system:test", requestId: "req_narrow" };
      const imsiOf = (n: number) => `2341099900000${n}${enters ? 1 : 0}`;
      await registerDevice(runtime.ports, ctx, { imsi: imsiOf(1), labels: { site: "north" } });
      const d2 = (await registerDevice(runtime.ports, ctx, { imsi: imsiOf(2), labels: { site: enters ? "south" : "north" } })).value;
      let n = 0;
      const report = async (via: Ports, imsi: string, type: string, data: Record<string, unknown>) => {
        const normalized = {
          type,
          dedupeKey: `n-${n++}`,
          occurredAt: new Date().toISOString(),
          device: { imsi },
          sourceType: "test",
          data,
        };
        const event = ingestedEvent({ ...ctx, actor: "source:src_test" }, "src_test", "simroot", normalized as never, new Date());
        expect((await applyOperatorEvent(via, event)).value.outcome).toBe("applied");
      };
      await report(runtime.ports, imsiOf(1), "sim.attached", { bearer: "cellular", ipv4: "10.50.0.1" });
      await report(runtime.ports, imsiOf(2), "sim.attached", { bearer: "cellular", ipv4: "10.50.0.2" });
      await runtime.settled();
      const follower = () => {
        const state = new PepState(tenantId);
        const sync = new FeedSync({
          url: "http://control-plane.test",
          apiKey: pep,
          publicKeys: [publicKey],
          state,
          waitSeconds: 0,
          limit: 100,
          selector: "site=north",
          fetch: ((input: string, init?: RequestInit) => runtime.app.request(input, init)) as typeof fetch,
        });
        return { state, sync };
      };
      const north = follower();
      await north.sync.snapshot();
      expect(north.state.bindings.has("10.50.0.2")).toBe(!enters);

      // Another instance, its sequencing held back, commits both: d2 changes site, d1 releases its address. One
      // sequencing run then puts both in one version.
      const otherClient = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
      refuseSequencerReads(otherClient, () => true);
      const other = portsFor(otherClient, runtime.ports.tables, runtime.bus);
      const revision = (await readDevice(other, tenantId, d2.id))!.device.revision;
      await Promise.all([
        updateDevice(other, ctx, { id: d2.id, ifRevision: revision, changes: { labels: { site: enters ? "north" : "south" } } }),
        report(other, imsiOf(1), "sim.detached", { bearer: "cellular" }),
      ]);
      await runtime.ports.ledger.sequence(tenantId);
      await runtime.settled();
      const head = (await call(runtime, pep, "GET", "/v1/feed?limit=1")).json.signed.head.version as number;
      for (let polls = 0; north.state.version < head && polls < 50; polls++) await north.sync.step();
      const fresh = follower();
      await fresh.sync.snapshot();
      const view = (state: PepState) => ({
        devices: [...state.devices.values()].map((device) => `${device.id} ${device.labels.site}`).sort(),
        bindings: [...state.bindings.values()].map((binding) => `${binding.address} ${binding.deviceId}`).sort(),
      });
      expect(view(north.state)).toEqual(view(fresh.state));
      expect(north.state.bindings.get("10.50.0.2")?.deviceId).toBe(enters ? d2.id : undefined);
      expect(north.state.bindings.has("10.50.0.1")).toBe(false);
      otherClient.destroy();
    },
    60_000,
  );
});

describe("a snapshot's replay", () => {
  it.each([
    ["at once", 0],
    ["11 s later", 11_000],
  ])("carries a change the device listing missed when the pages after it come %s", async (_, laterMs) => {
    const tenantId = `ten_replay_window_${laterMs}`;
    const ctx = { tenantId, actor: "system:test", requestId: "req_window" };
    const ids: string[] = [];
    for (let n = 0; n < 3; n++)
      ids.push((await registerDevice(runtime.ports, ctx, { imsi: `2341088800${laterMs ? 1 : 0}00${n}` })).value.id);
    const target = ids[1]!;
    const { Item: before } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.identity, Key: deviceKey(tenantId, target), ConsistentRead: true }),
    );
    await actOnDevice(runtime.ports, ctx, { id: target, action: "suspend", reason: "lost" });
    await runtime.ports.ledger.sequence(tenantId);
    // The byTenant index has not caught up with the suspension when the device listing reads it (AWS: milliseconds).
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    let lagging = true;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const input = args.input as { IndexName?: string };
        if (lagging && (context as { commandName?: string }).commandName === "QueryCommand" && input.IndexName === "byTenant") {
          const output = result.output as { Items?: Record<string, unknown>[] };
          output.Items = output.Items?.map((item) => (item.pk === before!.pk && item.sk === before!.sk ? { ...before! } : item));
        }
        return result;
      },
      { step: "initialize", name: "indexLag" },
    );
    const now = portsFor(client, runtime.ports.tables, runtime.bus);
    const later = portsFor(client, runtime.ports.tables, runtime.bus, () => new Date(Date.now() + laterMs));
    const signer = memorySigner();
    // Page 1: the settings and the three devices, listed with the lag; the rest (bindings, the replay) later.
    const first = await feedSnapshot(now, signer, tenantId, undefined, 5);
    lagging = false;
    const view = new Map<string, unknown>();
    for (const entry of first.entries) view.set(`${entry.kind}|${entry.key}`, entry.value);
    let cursor = first.next;
    let version = first.signed.head.version;
    while (cursor) {
      const page = await feedSnapshot(later, signer, tenantId, cursor, 5);
      for (const entry of page.entries) view.set(`${entry.kind}|${entry.key}`, entry.value);
      cursor = page.next;
      version = page.signed.head.version;
    }
    // No delta after the snapshot's version will carry the suspension: the snapshot must.
    const deltas = await feedDeltas(runtime.ports, signer, tenantId, { since: version, limit: 100, waitMs: 0 });
    expect(deltas.kind === "response" ? deltas.response.entries : []).toEqual([]);
    expect((view.get(`device|${target}`) as { state?: string }).state).toBe("suspended");
    client.destroy();
  });
});
