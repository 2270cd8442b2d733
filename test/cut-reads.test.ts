/**
 * The sequencer's cut reads the shard heads consistently only where the run's outcome depends on it (its own shards; when
 * the tenant is busy, every shard up to its own, where the designation is decided), the others eventually consistently,
 * at half the read units (core ledger/sequencer.ts `consistentShards`). DynamoDB Local always answers an eventually
 * consistent read with the newest item: these tests answer such reads as a replica behind would (`lagEventualReads`).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  applyOperatorEvent,
  documentClient,
  ingestedEvent,
  portsFor,
  registerDevice,
  shardOfSubject,
  verifyAuditChain,
  type Device,
  type Ports,
} from "@simroot/core";
import { readFeedHead, readShardHead, sequenceOnce, type OwnCommit, type SequencedNotice } from "@simroot/core/ledger/sequencer";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";
import { feedItems, holdersInFeed, lagEventualReads, refuseSequencerReads } from "./support/store-faults.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  // The runs under test are called by hand on changes left unsequenced: the feed's backstop would sequence them first.
  runtime = await startTestRuntime({ feedBackstop: false });
});
afterAll(() => runtime.stop());

const imsi = (n: number) => `23415${String(n).padStart(10, "0")}`;
const client = () => documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });

/** Devices of the tenant, registered (and sequenced) until every shard has a head; the lowest and highest shard's. */
async function devicesOnEveryShard(tenantId: string, first: number) {
  const ctx = { tenantId, actor: "system:test", requestId: "req_test" };
  const registered: Device[] = [];
  for (let n = 0; n < 400 && new Set(registered.map((device) => shardOfSubject(device.id))).size < 16; n += 8) {
    const batch = Array.from({ length: 8 }, (_, k) => registerDevice(runtime.ports, ctx, { imsi: imsi(first + n + k) }));
    for (const result of await Promise.all(batch)) registered.push(result.value);
  }
  expect(new Set(registered.map((device) => shardOfSubject(device.id))).size).toBe(16);
  await runtime.ports.ledger.sequence(tenantId);
  const byShard = [...registered].sort((a, b) => shardOfSubject(a.id) - shardOfSubject(b.id));
  return { low: byShard[0]!, high: byShard.at(-1)! };
}

let second = 0;
async function report(ports: Ports, tenantId: string, device: Device, type: string, data: Record<string, unknown>) {
  const normalized = {
    type,
    dedupeKey: `${type}-${second}`,
    occurredAt: new Date(Date.UTC(2026, 11, 4, 8, 0, second++)).toISOString(),
    device: { imsi: device.imsi },
    sourceType: "test",
    data,
  };
  const ctx = { tenantId, actor: "source:src_test", requestId: "req_test" };
  const event = ingestedEvent(ctx, "src_test", "simroot", normalized as never, new Date());
  expect((await applyOperatorEvent(ports, event)).value.outcome).toBe("applied");
}
const attach = (ports: Ports, tenantId: string, device: Device, address: string) =>
  report(ports, tenantId, device, "sim.attached", { bearer: "cellular", ipv4: address });

const shardSeq = async (tenantId: string, shard: number) =>
  (await readShardHead(runtime.ports.db, runtime.ports.tables, tenantId, shard)).seq;

/** One sequencing run through `db`, by an instance waiting for `commits` (`probe`: one that found its tenant busy). */
const runFor = (
  db: ReturnType<typeof client>,
  tenantId: string,
  commits: readonly OwnCommit[],
  probe?: Parameters<typeof sequenceOnce>[8],
) => sequenceOnce(db, runtime.ports.tables, tenantId, 16, new Date(), undefined, undefined, () => commits, probe);

/**
 * A run through `db` for a change on `shard` that nothing covers yet, so that it reads every other shard's head
 * eventually consistently: a lagging client keeps answering those heads as they are now. Nothing is new to it.
 */
async function readOthersNow(db: ReturnType<typeof client>, tenantId: string, shard: number) {
  expect(await runFor(db, tenantId, [{ shard, from: 1_000_000, seq: 1_000_000 }])).toBeUndefined();
}

/**
 * An instance that commits but cannot sequence (its reads of the shard heads are refused) while `stuck` holds: its
 * changes wait for the run under test. `done()` lets it sequence what it waits for, and closes it.
 */
function stuckInstance(tenantId: string) {
  const db = client();
  let refusing = true;
  refuseSequencerReads(db, () => refusing);
  const ports = portsFor(db, runtime.ports.tables, runtime.bus);
  return {
    ports,
    async done() {
      refusing = false;
      await ports.ledger.sequence(tenantId);
      db.destroy();
    },
  };
}

/** A change committed on `device`'s shard by a stuck instance: the shard and its head's sequence after it (`commit`: as its waiter). */
async function committedUnsequenced(tenantId: string, device: Device, address: string) {
  const stuck = stuckInstance(tenantId);
  await attach(stuck.ports, tenantId, device, address);
  const shard = shardOfSubject(device.id);
  const seq = await shardSeq(tenantId, shard);
  return { shard, seq, commit: { shard, from: seq, seq } satisfies OwnCommit, stuck };
}

/** Read units of the control table's BatchGetItems a client makes (the shard heads). */
function countCutUnits(db: ReturnType<typeof client>) {
  const counted = { units: 0 };
  db.middlewareStack.add(
    (next, context) => async (args) => {
      (args.input as Record<string, unknown>).ReturnConsumedCapacity = "TOTAL";
      const result = await next(args);
      if ((context as { commandName?: string }).commandName !== "BatchGetItemCommand") return result;
      for (const entry of ((result.output as { ConsumedCapacity?: { TableName?: string; CapacityUnits?: number }[] }).ConsumedCapacity ??
        []) as { TableName?: string; CapacityUnits?: number }[]) {
        if (String(entry.TableName).endsWith("control")) counted.units += entry.CapacityUnits ?? 0;
      }
      return result;
    },
    { step: "initialize", name: "countCutUnits" },
  );
  return counted;
}

describe("the cut's reads", () => {
  it("a quiet tenant's run reads its own shard's head consistently and the other 15 at half the units", async () => {
    const tenantId = "ten_cut_units";
    const { high } = await devicesOnEveryShard(tenantId, 100);
    const own = await committedUnsequenced(tenantId, high, "10.44.0.1");
    const db = client();
    const cut = countCutUnits(db);
    const result = await runFor(db, tenantId, [own.commit]);
    expect(result).toMatchObject({ tenantId, vector: expect.any(Array) });
    expect((result as SequencedNotice).vector[own.shard]).toBe(own.seq);
    // 1 + 15 x 0.5 (it was 16: every head read consistently).
    expect(cut.units).toBe(8.5);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true });
    db.destroy();
    await own.stuck.done();
  });

  it("a head read eventually consistently from before what the feed covers is no news and no race: the run covers its own change", async () => {
    const tenantId = "ten_cut_lagging";
    const { low, high } = await devicesOnEveryShard(tenantId, 200);
    const lowShard = shardOfSubject(low.id);
    // The run's client reads the other shards' heads once now (eventually consistently: its own is the high one), then, as a
    // replica 60 s behind, keeps answering them so.
    const db = client();
    const lagging = lagEventualReads(db, 60_000);
    await readOthersNow(db, tenantId, shardOfSubject(high.id));
    // The low shard moves on, and the feed covers it.
    await attach(runtime.ports, tenantId, low, "10.44.1.1");
    await runtime.ports.ledger.sequence(tenantId);
    const covered = await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);
    const own = await committedUnsequenced(tenantId, high, "10.44.1.2");
    const result = await runFor(db, tenantId, [own.commit]);
    // The low shard's head was answered from before the feed's vector, and the run still moved the feed, not back.
    expect(lagging.count).toBeGreaterThan(0);
    expect(result).toMatchObject({ tenantId, version: covered.version + 1 });
    const { vector } = result as SequencedNotice;
    expect(vector[own.shard]).toBe(own.seq);
    expect(vector[lowShard]).toBe(covered.vector[lowShard]);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true });
    db.destroy();
    await own.stuck.done();
  });

  it("a busy tenant's run reads every head up to its own consistently: a lagging read cannot hide the news that designates another instance", async () => {
    const tenantId = "ten_cut_designation";
    const { low, high } = await devicesOnEveryShard(tenantId, 300);
    const db = client();
    // Every eventually consistent read of the control table answers as the store was at the first read (60 s behind).
    lagEventualReads(db, 60_000);
    const lowShard = shardOfSubject(low.id);
    await readOthersNow(db, tenantId, shardOfSubject(high.id));
    // Another instance's change on the lower shard, then this instance's on the higher one, neither sequenced.
    const other = await committedUnsequenced(tenantId, low, "10.44.2.1");
    const own = await committedUnsequenced(tenantId, high, "10.44.2.2");
    expect(other.shard).toBe(lowShard);
    const before = await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);
    // Busy (`probe`): the probe's own reads lag and let it through; the cut's consistent reads then see the lower
    // shard's news, and the run yields to the instance holding it.
    const result = await runFor(db, tenantId, [own.commit], {});
    expect(result).toMatchObject({ yielded: { version: before.version } });
    expect((await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16)).version).toBe(before.version);
    db.destroy();
    await other.stuck.done();
    await own.stuck.done();
  });
});

/**
 * An address moves between two devices on different shards while the run that may yield reads the other shard through a
 * replica 60 s behind: the cut's binding rules (core ledger/cut.ts) still end the feed with the taker, whichever shard is
 * the run's own. (From the review of the change, 2026-12-04.)
 */
async function moveUnderLag(tenantId: string, first: number, address: string, runOn: "giver" | "taker") {
  const ctx = { tenantId, actor: "system:test", requestId: "req_test" };
  const registered: Device[] = [];
  for (let n = 0; n < 6; n++) registered.push((await registerDevice(runtime.ports, ctx, { imsi: imsi(first + n) })).value);
  const giver = registered[0]!;
  const taker = registered.find((device) => shardOfSubject(device.id) !== shardOfSubject(giver.id))!;
  await attach(runtime.ports, tenantId, giver, address);
  await runtime.ports.ledger.sequence(tenantId);
  const runShard = shardOfSubject((runOn === "giver" ? giver : taker).id);
  const db = client();
  const lagging = lagEventualReads(db, 60_000);
  // Every shard but the run's own is answered as it is now for the next 60 s.
  await readOthersNow(db, tenantId, runShard);
  // The release on the giver's shard, then the takeover on the taker's, by an instance that cannot sequence.
  const stuck = stuckInstance(tenantId);
  await report(stuck.ports, tenantId, giver, "sim.detached", { bearer: "cellular" });
  await attach(stuck.ports, tenantId, taker, address);
  const seq = await shardSeq(tenantId, runShard);
  const result = await runFor(db, tenantId, [{ shard: runShard, from: seq, seq }]);
  expect(result).toMatchObject({ tenantId });
  expect(lagging.count).toBeGreaterThan(0);
  await stuck.done();
  await runtime.ports.ledger.sequence(tenantId);
  expect(await holdersInFeed(runtime.ports, tenantId, address)).toEqual([giver.id, taker.id]);
  expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true });
  db.destroy();
  return (await feedItems(runtime.ports, tenantId)).some((item) => item.left !== undefined);
}

describe("a binding moving across a partly eventually consistent cut", () => {
  it("run on the giver's shard, the taker's read lagging: the cut reaches the takeover", async () => {
    expect(await moveUnderLag("ten_cut_move_giver", 400, "10.44.3.1", "giver")).toBe(false);
  });
  it("run on the taker's shard, the giver's read lagging: the release comes later, left out and naming the takeover", async () => {
    expect(await moveUnderLag("ten_cut_move_taker", 500, "10.44.3.2", "taker")).toBe(true);
  });
});
