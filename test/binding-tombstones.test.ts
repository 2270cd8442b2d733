/**
 * A release leaves a tombstone that keeps the address's revision (ledger/cut.ts orders an address's changes by it), and
 * every feed snapshot reads the tombstones of its partitions (filtered out, but read). Tombstones now expire
 * (`bindingTombstoneSeconds`, DynamoDB's TTL), so an address released long ago is bound again with no item to read a
 * revision from: it starts above every revision it had (the time of the write, in milliseconds), and its changes keep
 * their order in the feed whether the release and the new holder land in one cut or in two.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { DeleteCommand, GetCommand } from "@aws-sdk/lib-dynamodb";
import { DescribeTimeToLiveCommand } from "@aws-sdk/client-dynamodb";
import {
  applyOperatorEvent,
  bindingTombstoneSeconds,
  documentClient,
  ingestedEvent,
  portsFor,
  registerDevice,
  shardOfSubject,
  verifyAuditChain,
  type Ports,
} from "@simroot/core";
import { bindingKey } from "@simroot/core/device/keys";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";
import { holdersInFeed, refuseSequencerReads } from "./support/store-faults.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  // Sequencing is staged here (held back, then run): no backstop doing it meanwhile.
  runtime = await startTestRuntime({ feedBackstop: false });
});
afterAll(() => runtime.stop());

const ctxFor = (tenantId: string) => ({ tenantId, actor: "system:test", requestId: "req_test" });
const imsi = (n: number) => `23420${String(n).padStart(10, "0")}`;
type Client = ReturnType<typeof documentClient>;
const newClient = (): Client => documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });

let second = 0;
async function report(tenantId: string, via: Ports, device: { imsi?: string }, type: string, data: Record<string, unknown>) {
  const normalized = {
    type,
    dedupeKey: `${type}-${second}`,
    occurredAt: new Date(Date.UTC(2026, 11, 5, 8, 0, second++)).toISOString(),
    device: { imsi: device.imsi },
    sourceType: "test",
    data,
  };
  const event = ingestedEvent({ ...ctxFor(tenantId), actor: "source:src_test" }, "src_test", "simroot", normalized as never, new Date());
  expect((await applyOperatorEvent(via, event)).value.outcome).toBe("applied");
}

const bindingItem = async (ports: Ports, tenantId: string, address: string) =>
  (await ports.db.send(new GetCommand({ TableName: ports.tables.identity, Key: bindingKey(tenantId, address), ConsistentRead: true })))
    .Item;

/** What DynamoDB's TTL does to an expired item: deletes it (DynamoDB Local keeps expired items). */
async function expire(ports: Ports, tenantId: string, address: string) {
  const item = await bindingItem(ports, tenantId, address);
  expect(item?.deviceId).toBeUndefined(); // a tombstone
  await ports.db.send(new DeleteCommand({ TableName: ports.tables.identity, Key: bindingKey(tenantId, address) }));
  return item!;
}

/** Two devices whose ids hash to different ledger shards: an address moving between them is written from both. */
async function twoShards(ports: Ports, tenantId: string, from: number) {
  const registered = [];
  for (let n = 0; n < 6; n++) registered.push((await registerDevice(ports, ctxFor(tenantId), { imsi: imsi(from + n) })).value);
  const giver = registered[0]!;
  const taker = registered.find((device) => shardOfSubject(device.id) !== shardOfSubject(giver.id))!;
  return { giver, taker };
}

describe("release tombstones", () => {
  it("expire: the identity table's TTL deletes a tombstone some days after its release, and never a held binding", async () => {
    const tenantId = "ten_tomb_ttl";
    const { ports } = runtime;
    const { giver } = await twoShards(ports, tenantId, 0);
    await report(tenantId, ports, giver, "sim.attached", { bearer: "cellular", ipv4: "10.7.0.1" });
    expect((await bindingItem(ports, tenantId, "10.7.0.1"))?.expiresAt).toBeUndefined();
    const before = Math.floor(Date.now() / 1000);
    await report(tenantId, ports, giver, "sim.detached", { bearer: "cellular" });
    const tombstone = await bindingItem(ports, tenantId, "10.7.0.1");
    expect(tombstone?.deviceId).toBeUndefined();
    expect(Number(tombstone?.expiresAt)).toBeGreaterThanOrEqual(before + bindingTombstoneSeconds);
    expect(Number(tombstone?.expiresAt)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + bindingTombstoneSeconds);
    const client = newClient();
    const { TimeToLiveDescription } = await client.send(new DescribeTimeToLiveCommand({ TableName: ports.tables.identity }));
    client.destroy();
    expect(TimeToLiveDescription).toMatchObject({ AttributeName: "expiresAt", TimeToLiveStatus: "ENABLED" });
  });

  it("an address whose tombstone expired is bound again above every revision it had: the verifier finds the feed in order", async () => {
    const tenantId = "ten_tomb_two_cuts";
    const address = "10.7.1.1";
    const { ports } = runtime;
    const { giver, taker } = await twoShards(ports, tenantId, 10);
    await report(tenantId, ports, giver, "sim.attached", { bearer: "cellular", ipv4: address });
    await report(tenantId, ports, giver, "sim.detached", { bearer: "cellular" });
    const released = await expire(ports, tenantId, address);
    await report(tenantId, ports, taker, "sim.attached", { bearer: "cellular", ipv4: address });
    expect(Number((await bindingItem(ports, tenantId, address))?.rev)).toBeGreaterThan(Number(released.rev));
    expect(await holdersInFeed(ports, tenantId, address)).toEqual([giver.id, null, taker.id]);
    expect(await verifyAuditChain(ports, tenantId)).toMatchObject({ valid: true });
  });

  it("the release and the new holder in one cut: the feed ends with the new holder, and the sequencer does not stall", async () => {
    const tenantId = "ten_tomb_one_cut";
    const address = "10.7.2.1";
    const client = newClient();
    let held = false;
    refuseSequencerReads(client, () => held);
    const ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const { giver, taker } = await twoShards(ports, tenantId, 20);
    await report(tenantId, ports, giver, "sim.attached", { bearer: "cellular", ipv4: address });
    // Sequencing held back: the release, its tombstone's expiry and the new holder all wait for one cut.
    held = true;
    await report(tenantId, ports, giver, "sim.detached", { bearer: "cellular" });
    await expire(ports, tenantId, address);
    await report(tenantId, ports, taker, "sim.attached", { bearer: "cellular", ipv4: address });
    held = false;
    await ports.ledger.sequence(tenantId);
    expect(await holdersInFeed(ports, tenantId, address)).toEqual([giver.id, taker.id]);
    expect(await verifyAuditChain(ports, tenantId)).toMatchObject({ valid: true });
    client.destroy();
  }, 60_000);
});
