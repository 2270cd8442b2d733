/**
 * Who sequences a busy tenant's feed, across instances that share nothing but the store. Every committing instance
 * used to run the sequencer after its commit: at a tenant's busiest (a re-attach storm over hundreds of Lambda
 * instances) they all read the records and bindings and raced for the same next version, each loser's conditional
 * write refused on the feed's one partition (a refused write still costs a write unit). Now the sequencer designates
 * one instance at a time (core ledger/sequencer.ts `sequenceOnce`, `mine`): the one holding the oldest change the feed
 * lacks on the lowest shard with news. The others follow the head until it carries their changes; they run themselves
 * only if that takes `yieldWaitMs` (the designated one stopped). A change PEPs must learn at once (a revocation) and an
 * explicit `sequence()` never wait.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  actOnDevice,
  applyOperatorEvent,
  documentClient,
  ingestedEvent,
  portsFor,
  registerDevice,
  type Ports,
  type RequestContext,
} from "@simroot/core";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { feedHeadKey, feedPartition } from "@simroot/core/ledger/feed-version";
import { readFeedHead, readShardHead } from "@simroot/core/ledger/sequencer";
import { shardOfSubject } from "@simroot/core/ledger/shard";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  // No backstop: the history reader would sequence what the instances leave behind, 2 s after it was committed.
  runtime = await startTestRuntime({ feedBackstop: false });
});
afterAll(() => runtime.stop());

/**
 * An instance of its own (its own client and ledger, as another Lambda container). Its reads of the 16 shard heads
 * (the sequencer's cut, both its reads) wait while held; its writes of feed versions and its eventually consistent reads of the feed
 * head (an instance following the head) are counted.
 */
function instance(tenantId: string, yieldWaitMs = 5_000) {
  const db = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
  const seen = { committed: 0, versionPuts: 0, cutReads: 0, following: 0, probes: 0, consistentHeadReads: 0, staleServed: 0 };
  let hold: Promise<void> | undefined;
  let release = () => {};
  // A replica behind: until `until`, every probe's eventually consistent read of the feed head shows this item instead.
  let stale: { item: Record<string, unknown>; until: number } | undefined;
  db.middlewareStack.add(
    (next, context) => async (args) => {
      const command = (context as { commandName?: string }).commandName;
      const input = args.input as {
        RequestItems?: Record<string, { Keys?: unknown[]; ConsistentRead?: boolean }>;
        TableName?: string;
        Item?: Record<string, unknown>;
        Key?: Record<string, unknown>;
        ConsistentRead?: boolean;
      };
      const control = input.RequestItems?.[runtime.ports.tables.control];
      const pk = (value: unknown) => (typeof value === "object" && value !== null ? (value as { S?: string }).S : value);
      // A probe (whether this instance may be designated) reads the feed head and the shard heads below its change's,
      // eventually consistently. The cut: the 16 shard heads, those the run's decision needs read consistently (a run that
      // may yield reads the others eventually consistently, in a read of their own: core sequencer.ts `consistentShards`).
      const probe =
        command === "BatchGetItemCommand" &&
        control !== undefined &&
        (control.Keys ?? []).some((key) => pk((key as { sk?: unknown }).sk) === "feed");
      if (command === "BatchGetItemCommand" && control !== undefined && !probe) {
        if (control.ConsistentRead) seen.cutReads += 1;
        if (hold) await hold;
      }
      if (probe) seen.probes += 1;
      if (
        command === "GetItemCommand" &&
        input.TableName === runtime.ports.tables.control &&
        input.ConsistentRead &&
        pk(input.Key?.sk) === "feed"
      ) {
        seen.consistentHeadReads += 1;
      }
      if (
        command === "PutItemCommand" &&
        input.TableName === runtime.ports.tables.audit &&
        pk(input.Item?.pk) === feedPartition(tenantId)
      ) {
        seen.versionPuts += 1;
      }
      if (command === "GetItemCommand" && input.TableName === runtime.ports.tables.control && input.ConsistentRead === false) {
        seen.following += 1;
      }
      const result = await next(args);
      if (command === "TransactWriteItemsCommand") seen.committed += 1;
      const responses = (result.output as { Responses?: Record<string, Record<string, unknown>[]> }).Responses;
      const items = responses?.[runtime.ports.tables.control];
      if (probe && stale && Date.now() < stale.until && items) {
        responses[runtime.ports.tables.control] = [...items.filter((item) => item.sk !== "feed"), stale.item];
        seen.staleServed += 1;
      }
      return result;
    },
    { step: "initialize", name: "watchSequencing" },
  );
  // A long wait for the designated instance by default, so that a loaded machine does not run the fallback first.
  const ports: Ports = portsFor(db, runtime.ports.tables, runtime.bus, undefined, { yieldWaitMs });
  return {
    ports,
    seen,
    hold() {
      hold = new Promise((resolve) => {
        release = resolve;
      });
    },
    release() {
      hold = undefined;
      release();
    },
    staleFor(item: Record<string, unknown>, ms: number) {
      stale = { item, until: Date.now() + ms };
    },
    /** Counts from here on (what the set-up did, its registrations, is not the test's). */
    reset() {
      Object.assign(seen, { versionPuts: 0, cutReads: 0, following: 0, probes: 0, consistentHeadReads: 0 });
    },
    destroy: () => db.destroy(),
  };
}
type Instance = ReturnType<typeof instance>;

let imsis = 0;
const imsi = () => `23410${String(Date.now() + imsis++).slice(-10)}`;

/** Two devices of the tenant, registered by `by`: on one shard, or the first on a lower shard than the second. */
async function devices(by: Instance, ctx: RequestContext, sameShard: boolean) {
  const first = (await registerDevice(by.ports, ctx, { imsi: imsi() })).value;
  if (sameShard) return [first, first] as const;
  let second = (await registerDevice(by.ports, ctx, { imsi: imsi() })).value;
  while (shardOfSubject(second.id) === shardOfSubject(first.id)) second = (await registerDevice(by.ports, ctx, { imsi: imsi() })).value;
  return shardOfSubject(first.id) < shardOfSubject(second.id) ? ([first, second] as const) : ([second, first] as const);
}

let second = 0;
/**
 * `by` applies an attach of `device` at `address` (a session change: it may wait for another instance's run); resolves
 * once committed, with the promise of its end (in the feed).
 */
async function attach(by: Instance, ctx: RequestContext, device: { imsi?: string }, address: string) {
  const before = by.seen.committed;
  const normalized = {
    type: "sim.attached",
    dedupeKey: `attach-${device.imsi}-${second}`,
    occurredAt: new Date(Date.UTC(2026, 11, 4, 9, 0, second++)).toISOString(),
    device: { imsi: device.imsi! },
    sourceType: "test",
    data: { bearer: "cellular", ipv4: address },
  };
  const event = ingestedEvent({ ...ctx, actor: "source:src_test" }, "src_test", "simroot", normalized as never, new Date());
  const done = applyOperatorEvent(by.ports, event);
  await expect.poll(() => by.seen.committed > before, { timeout: 5_000 }).toBe(true);
  // Wrapped: an async function's returned promise would be awaited with it.
  return { done };
}

async function scene(name: string, yieldWaitMs?: number) {
  const tenantId = `ten_turns_${name}_${Date.now()}`;
  const ctx: RequestContext = { tenantId, actor: "system:test", requestId: "req_test" };
  const a = instance(tenantId, yieldWaitMs);
  const b = instance(tenantId, yieldWaitMs);
  return {
    tenantId,
    ctx,
    a,
    b,
    head: () => readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16),
    /** From here on: both instances' counts start afresh, and their cut reads wait until released. */
    holdBoth() {
      for (const one of [a, b]) {
        one.reset();
        one.hold();
      }
    },
  };
}

describe("sequencing a busy tenant across instances", () => {
  it("leaves the run to the instance holding the oldest change the feed lacks: one version, one writer", async () => {
    const { ctx, a, b, head, holdBoth } = await scene("same");
    const [device] = await devices(a, ctx, true);
    const before = (await head()).version;
    holdBoth();
    // A's change, then B's, of one device (one shard): A holds the oldest, so A is designated.
    const first = await attach(a, ctx, device, "10.60.0.1");
    const second = await attach(b, ctx, device, "10.60.0.2");
    b.release();
    // B reads the cut, finds A designated, and follows the head instead of racing A for the version.
    await expect.poll(() => b.seen.following > 0 || b.seen.versionPuts > 0, { timeout: 3_000 }).toBe(true);
    expect(b.seen.versionPuts).toBe(0);
    // B's next change, A still designated: B now knows the tenant is busy, and only probes (the feed head and the shard
    // heads below its change's, eventually consistent): no cut, no consistent read of the head.
    const [cutReads, headReads] = [b.seen.cutReads, b.seen.consistentHeadReads];
    const third = await attach(b, ctx, device, "10.60.0.3");
    await expect.poll(() => b.seen.probes, { timeout: 3_000 }).toBeGreaterThan(0);
    a.release();
    await Promise.all([first.done, second.done, third.done]);
    // A's run carried the three changes in one version; B wrote nothing, and read the cut once, for its first change.
    expect(a.seen.versionPuts).toBe(1);
    expect(b.seen.versionPuts).toBe(0);
    expect(b.seen.cutReads).toBe(1);
    expect([b.seen.cutReads, b.seen.consistentHeadReads]).toEqual([cutReads, headReads]);
    expect((await head()).version).toBe(before + 1);
    a.destroy();
    b.destroy();
  });

  it("designates the lowest shard with news, whichever instance committed first", async () => {
    const { ctx, a, b, head, holdBoth } = await scene("shards");
    const [low, high] = await devices(a, ctx, false);
    const before = (await head()).version;
    holdBoth();
    // A commits first, on the higher shard; B after it, on the lower: B is designated.
    const first = await attach(a, ctx, high, "10.61.0.1");
    const second = await attach(b, ctx, low, "10.61.0.2");
    a.release();
    await expect.poll(() => a.seen.following > 0 || a.seen.versionPuts > 0, { timeout: 3_000 }).toBe(true);
    expect(a.seen.versionPuts).toBe(0);
    b.release();
    await Promise.all([first.done, second.done]);
    expect(b.seen.versionPuts).toBe(1);
    expect(a.seen.versionPuts).toBe(0);
    expect(a.seen.cutReads).toBe(1);
    expect((await head()).version).toBe(before + 1);
    a.destroy();
    b.destroy();
  });

  it("catches up when its probe read a head from before the last move (an eventually consistent replica behind)", async () => {
    const { tenantId, ctx, a, b, head } = await scene("stale");
    const [low, high] = await devices(a, ctx, false);
    // A finds B designated once (B holds the oldest change, on the lower shard): A now knows the tenant is busy.
    b.hold();
    const held = await attach(b, ctx, low, "10.64.0.1");
    const yielded = await attach(a, ctx, high, "10.64.0.2");
    await expect.poll(() => a.seen.following, { timeout: 3_000 }).toBeGreaterThan(0);
    b.release();
    await Promise.all([held.done, yielded.done]);
    const { Item: before } = await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.control, Key: feedHeadKey(tenantId), ConsistentRead: true }),
    );
    // B's change on the lower shard moves the head; A's probe then reads the head from before that move, which shows
    // B's change as news on a lower shard than A's: someone else's turn, as far as A can tell.
    await (await attach(b, ctx, low, "10.64.0.3")).done;
    a.reset();
    // Every probe of A's for the next 3 s reads that older head (its follow reads, a plain GetItem, are current).
    a.staleFor(before!, 3_000);
    const asked = Date.now();
    await (await attach(a, ctx, high, "10.64.0.4")).done;
    // A follows, reads the head again (newer than the one it probed) and asks again, judging by the newer head it has
    // seen: it runs, neither after the stale reads end (3 s) nor after the 5 s fallback.
    expect(Date.now() - asked).toBeLessThan(1_500);
    expect(a.seen.staleServed).toBeGreaterThanOrEqual(1);
    expect(a.seen.following).toBeGreaterThan(0);
    expect(a.seen.versionPuts).toBe(1);
    expect((await head()).vector[shardOfSubject(high.id)]).toBeGreaterThan(Number((before!.vector as number[])[shardOfSubject(high.id)]));
    a.destroy();
    b.destroy();
  });

  it("runs itself when the designated instance does not (it stopped), after half a second", async () => {
    const { ctx, a, b, head, holdBoth } = await scene("stopped", 500);
    const [device] = await devices(a, ctx, true);
    holdBoth();
    const first = await attach(a, ctx, device, "10.62.0.1");
    const committed = Date.now();
    const second = await attach(b, ctx, device, "10.62.0.2");
    // A never gets past its cut read (a container frozen or gone): B follows the head a while, then runs.
    b.release();
    await second.done;
    const waited = Date.now() - committed;
    expect(b.seen.following).toBeGreaterThan(0);
    expect(b.seen.versionPuts).toBe(1);
    expect(waited).toBeGreaterThanOrEqual(450);
    expect(waited).toBeLessThan(3_000);
    const carried = await head();
    // A, let go, finds its change carried (its head read is from before B's run: a write of that version is refused).
    a.release();
    await first.done;
    expect((await head()).version).toBe(carried.version);
    a.destroy();
    b.destroy();
  });

  it("keeps following while the head keeps moving, past half a second, and runs once it stops", async () => {
    const { tenantId, ctx, a, b, holdBoth } = await scene("moving", 500);
    const [device] = await devices(a, ctx, true);
    holdBoth();
    // A holds the oldest change and stays in its cut read; B's change follows it on the same shard.
    const first = await attach(a, ctx, device, "10.65.0.1");
    const committed = Date.now();
    const second = await attach(b, ctx, device, "10.65.0.2");
    b.release();
    await expect.poll(() => b.seen.following, { timeout: 3_000 }).toBeGreaterThan(0);
    // The head moves every 150 ms for 1.2 s (its version only: someone sequencing other shards, slowly), B's change
    // still uncovered: B keeps following instead of running after 500 ms and racing whoever moves it.
    const key = feedHeadKey(tenantId);
    for (let n = 0; n < 8; n++) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      await runtime.ports.db.send(
        new UpdateCommand({
          TableName: runtime.ports.tables.control,
          Key: key,
          UpdateExpression: "SET version = version + :one",
          ExpressionAttributeValues: { ":one": 1 },
        }),
      );
    }
    expect(b.seen.versionPuts).toBe(0);
    expect(Date.now() - committed).toBeGreaterThan(1_000);
    // The head stops: B runs itself half a second later, and its change is sequenced.
    await second.done;
    expect(b.seen.versionPuts).toBe(1);
    expect(Date.now() - committed).toBeLessThan(2_500);
    a.release();
    await first.done;
    a.destroy();
    b.destroy();
  });

  it("never makes a revocation wait for another instance, nor an explicit sequence()", async () => {
    const { tenantId, ctx, a, b, head, holdBoth } = await scene("urgent");
    const [device] = await devices(a, ctx, true);
    const other = (await registerDevice(a.ports, ctx, { imsi: imsi() })).value;
    holdBoth();
    // A holds the oldest change and stops at its cut read; B then revokes the device: PEPs must learn it at once.
    const first = await attach(a, ctx, device, "10.63.0.1");
    const revokedBefore = b.seen.committed;
    const revoked = actOnDevice(b.ports, ctx, { id: device.id, action: "revoke", reason: "stolen" });
    await expect.poll(() => b.seen.committed > revokedBefore, { timeout: 5_000 }).toBe(true);
    b.release();
    await revoked;
    expect(b.seen.following).toBe(0);
    expect(b.seen.versionPuts).toBe(1);
    // An explicit run covers whatever was committed before it, now: C's change (another instance, stopped) included.
    const c = instance(tenantId);
    c.hold();
    const third = await attach(c, ctx, other, "10.63.0.3");
    const cSeq = (await readShardHead(runtime.ports.db, runtime.ports.tables, tenantId, shardOfSubject(other.id))).seq;
    // B's own change after C's, on the same shard: its probe finds C designated, and B follows the head (a session
    // change may wait) until its explicit sequence() runs at once, well before the 5 s it would otherwise wait.
    const fourth = await attach(b, ctx, other, "10.63.0.4");
    await expect.poll(() => b.seen.following, { timeout: 3_000 }).toBeGreaterThan(0);
    const asked = Date.now();
    await b.ports.ledger.sequence(tenantId);
    expect(Date.now() - asked).toBeLessThan(1_000);
    const covered = await head();
    expect(covered.vector[shardOfSubject(other.id)]).toBeGreaterThanOrEqual(cSeq + 1);
    a.release();
    c.release();
    await Promise.all([first.done, third.done, fourth.done]);
    a.destroy();
    b.destroy();
    c.destroy();
  });
});
