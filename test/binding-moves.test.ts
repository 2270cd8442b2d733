/**
 * A binding kept at its former key (before 898598b) is moved by its next write: a Put at the new key and a Delete of
 * the former one, in one transaction. A reader that read the new key, then the former one, could find it at neither
 * when the move committed between the two reads (found by a helper review): IP lookups answered nobody, and the
 * sequencer served an overtaken release after its takeover. Readers now read the new key again. */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { documentClient, portsFor, resolveDevice, verifyAuditChain, type Ports } from "@simroot/core";
import { legacyBindingKey } from "@simroot/core/device/keys";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";
import { freezeShardHead, holdersInFeed, keptAsBefore, refuseSequencerReads } from "./support/store-faults.ts";
import { twoShards } from "./support/two-shards.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  // The sequencer is staged here (a run that stops, an item that moves while read): no backstop finishing its work.
  runtime = await startTestRuntime({ feedBackstop: false });
});
afterAll(() => runtime.stop());

type Client = ReturnType<typeof documentClient>;
const newClient = (): Client => documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });

/** Runs `before()` once, just before `client` sends the BatchGetItem that reads the former key of `address`. */
function beforeFormerKeyRead(client: Client, tenantId: string, address: string, before: () => Promise<void>) {
  let done = false;
  const legacy = legacyBindingKey(tenantId, address);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = (context as { commandName?: string }).commandName;
      const requested = Object.values(
        (args.input as { RequestItems?: Record<string, { Keys: Record<string, unknown>[] }> }).RequestItems ?? {},
      );
      const readsFormer = requested.some(({ Keys }) => Keys.some((key) => key.pk === legacy.pk && key.sk === legacy.sk));
      if (!done && command === "BatchGetItemCommand" && readsFormer) {
        done = true;
        await before();
      }
      return next(args);
    },
    { step: "initialize", name: "beforeFormerKeyRead" },
  );
}

describe("a binding kept at its former key, moved while it is read", () => {
  it("is found by IP lookup while another device takes it over", async () => {
    const tenantId = "ten_race_lookup";
    const { giver: holder, taker, report } = await twoShards(runtime.ports, tenantId, 1);
    await report(holder, "sim.attached", { bearer: "cellular", ipv4: "10.8.0.1" });
    await keptAsBefore(runtime.ports, tenantId, "10.8.0.1");
    const client = newClient();
    const ports = portsFor(client, runtime.ports.tables, runtime.bus);
    // The takeover commits after the lookup read the new key and before it reads the former one.
    beforeFormerKeyRead(client, tenantId, "10.8.0.1", () => report(taker, "sim.attached", { bearer: "cellular", ipv4: "10.8.0.1" }));
    // Someone holds the address before, during and after the takeover: the holder, then the taker.
    expect([holder.id, taker.id]).toContain(await resolveDevice(ports, tenantId, { ip: "10.8.0.1" }));
    client.destroy();
  });

  it("the sequencer does not serve an overtaken release after its takeover when the takeover's item moves while it is read", async () => {
    const tenantId = "ten_race_seq";
    const address = "10.9.7.1";
    const client = newClient();
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const { registered, giver, taker, report } = await twoShards(ports, tenantId, 100);
    const third = registered.find((device) => device.id !== giver.id && device.id !== taker.id)!;
    await report(giver, "sim.attached", { bearer: "cellular", ipv4: address });
    // The sequencer reads the giver's shard as it was before its release: the takeover is served, the release waits.
    const thaw = await freezeShardHead(client, ports, tenantId, giver.id);
    await report(giver, "sim.detached");
    await report(taker, "sim.attached", { bearer: "cellular", ipv4: address });
    thaw();
    expect(await holdersInFeed(ports, tenantId, address)).toEqual([giver.id, taker.id]);
    // The takeover's item is where code before 898598b kept it (that code wrote it; this code runs since).
    await keptAsBefore(runtime.ports, tenantId, address);
    // Another instance (its own sequencer held back) moves the address to a third device while this run reads it.
    const otherClient = newClient();
    refuseSequencerReads(otherClient, () => true);
    const other = portsFor(otherClient, runtime.ports.tables, runtime.bus);
    beforeFormerKeyRead(client, tenantId, address, () => report(third, "sim.attached", { bearer: "cellular", ipv4: address }, other));
    await ports.ledger.sequence(tenantId);
    await ports.ledger.sequence(tenantId);
    const holders = await holdersInFeed(ports, tenantId, address);
    // The release (the address's second revision) must never follow the takeover (its third) it was overtaken by.
    expect(holders).toEqual([giver.id, taker.id, third.id]);
    expect(await verifyAuditChain(ports, tenantId)).toMatchObject({ valid: true });
    client.destroy();
    otherClient.destroy();
  }, 60_000);
});
