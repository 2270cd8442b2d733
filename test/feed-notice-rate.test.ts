/**
 * How often a tenant's feed notices go out, across instances that share nothing but the store. Each notice is delivered
 * (and billed) to every PEP following the tenant and a carried one costs a signature, so a run of IP-binding changes
 * only (a re-attach storm) is announced at most once a second (`noticeIntervalMs`, kept in the feed head item, which
 * every run writes anyway); a change of anything else (a revocation among them) is announced at once; and the end of a
 * burst is announced by the feed's backstop once the interval has passed.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  actOnDevice,
  applyOperatorEvent,
  documentClient,
  ingestedEvent,
  portsFor,
  publishCommits,
  registerDevice,
  readDevice,
  updateDevice,
  type CommitNews,
  type Ports,
  type RequestContext,
} from "@simroot/core";
import { GetCommand, PutCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { catchUpFeed } from "@simroot/core/ledger/catch-up";
import { feedHeadKey } from "@simroot/core/ledger/feed-version";
import { noticeIntervalMs, readFeedHead, readShardHead, sequenceOnce } from "@simroot/core/ledger/sequencer";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";
import { refuseSequencerReads } from "./support/store-faults.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  // The backstop is called by hand here (the history reader would run it too, racing the assertions).
  runtime = await startTestRuntime({ feedBackstop: false });
});
afterAll(() => runtime.stop());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Db = Ports["db"];
type Command = Parameters<Db["send"]>[0];

/** An instance of its own (its own ledger, as another Lambda container) whose notices are recorded; `wrap` its store. */
function instance(wrap: (db: Db) => Db = (db) => db) {
  const published: CommitNews[] = [];
  const ports: Ports = {
    ...portsFor(wrap(runtime.ports.db), runtime.ports.tables, runtime.bus),
    feedNotifier: { publish: async (notice) => void published.push(notice) },
  };
  publishCommits(ports);
  return { ports, published };
}

function tenant(tenantId: string) {
  const ctx: RequestContext = { tenantId, actor: "system:test", requestId: "req_test" };
  let second = 0;
  /** An attach at a new address: a change of the device's IP binding only. */
  const attach = (ports: Ports, imsi: string, address: string) => {
    const normalized = {
      type: "sim.attached",
      dedupeKey: `attach-${imsi}-${second}`,
      occurredAt: new Date(Date.UTC(2026, 11, 4, 8, 0, second++)).toISOString(),
      device: { imsi },
      sourceType: "test",
      data: { bearer: "cellular", ipv4: address },
    };
    return applyOperatorEvent(
      ports,
      ingestedEvent({ ...ctx, actor: "source:src_test" }, "src_test", "simroot", normalized as never, new Date()),
    );
  };
  return { ctx, attach };
}

/**
 * Two devices registered (versions 1 and 2), then, past the notice interval, two attaches: the first announced
 * (version 3), the second within the interval after it (version 4, not announced: the burst's end, left untold).
 */
async function burst(tenantId: string, firstImsi: string, subnet: string) {
  const { ctx, attach } = tenant(tenantId);
  const a = instance();
  const one = (await registerDevice(a.ports, ctx, { imsi: firstImsi })).value;
  const two = (await registerDevice(a.ports, ctx, { imsi: String(Number(firstImsi) + 1) })).value;
  await sleep(noticeIntervalMs + 100);
  await attach(a.ports, one.imsi!, `${subnet}.1`);
  await attach(a.ports, two.imsi!, `${subnet}.2`);
  return { a, attach, one, two };
}

/** Whether `command` moves the tenant's feed head (however the sequencer writes it). */
function movesHead(command: Command, tenantId: string) {
  const isHead = (item?: Record<string, unknown>) => item?.pk === `T#${tenantId}` && item?.sk === "feed";
  if (command instanceof PutCommand) return isHead(command.input.Item);
  if (command instanceof UpdateCommand) return isHead(command.input.Key) && String(command.input.UpdateExpression).includes(":to");
  if (command instanceof TransactWriteCommand)
    return (command.input.TransactItems ?? []).some((item) => isHead(item.Put?.Item) || isHead(item.Update?.Key));
  return false;
}

/** A store whose feed head moves wait for `open()`: `reached` once one is sent, `moved` once it has landed. */
function gatedHeadMove(tenantId: string) {
  let open!: () => void;
  let landed!: () => void;
  let arrived!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const moved = new Promise<void>((resolve) => (landed = resolve));
  const reached = new Promise<void>((resolve) => (arrived = resolve));
  const wrap = (db: Db) =>
    ({
      send: async (command: Command) => {
        if (!movesHead(command, tenantId)) return db.send(command);
        arrived();
        await gate;
        const answer = await db.send(command);
        landed();
        return answer;
      },
    }) as Db;
  return { wrap, open: () => open(), moved, reached };
}

const headOf = (tenantId: string) => readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);

/** A history invocation for the records up to the head, with its trailing notice. */
async function historyInvocation(tenantId: string, reader: Pick<Ports, "db" | "tables" | "feedNotifier">) {
  const head = await headOf(tenantId);
  const covered = head.vector.flatMap((seq, shard) => (seq > 0 ? [{ tenantId, shard, seq, time: new Date().toISOString() }] : []));
  return catchUpFeed(covered, reader, { graceMs: 0 });
}

describe("feed notices, across instances that share nothing", () => {
  it("announce a re-attach burst at most once a second, a revocation, a relabelling or a registration at once", async () => {
    const tenantId = "ten_notice_rate";
    const { ctx, attach } = tenant(tenantId);
    const a = instance();
    const b = instance();
    const devices = [];
    for (const imsi of ["234100000000801", "234100000000802", "234100000000803"]) {
      devices.push((await registerDevice(a.ports, ctx, { imsi })).value);
    }
    // Registrations: a device's entry alone, each announced at once.
    expect(a.published.map((notice) => notice.version)).toEqual([1, 2, 3]);
    await sleep(noticeIntervalMs + 100);

    // A re-attach burst on two instances: the first is announced, the others within the second are not.
    expect((await attach(a.ports, devices[0]!.imsi!, "10.44.0.1")).value.outcome).toBe("applied");
    expect((await attach(b.ports, devices[1]!.imsi!, "10.44.0.2")).value.outcome).toBe("applied");
    expect((await attach(a.ports, devices[2]!.imsi!, "10.44.0.3")).value.outcome).toBe("applied");
    expect([...a.published, ...b.published].map((notice) => notice.version)).toEqual([1, 2, 3, 4]);

    // A revocation is announced at once, from either instance, whatever the interval.
    await actOnDevice(b.ports, ctx, { id: devices[2]!.id, action: "revoke", reason: "stolen" });
    expect(b.published.map((notice) => notice.version)).toEqual([7]);
    const head = await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);
    expect(head).toMatchObject({ version: 7, noticedVersion: 7 });

    // So is an active device relabelled (policies and selectors match labels: it may have lost access).
    const labelled = (await readDevice(a.ports, tenantId, devices[1]!.id))!.device;
    await updateDevice(a.ports, ctx, { id: labelled.id, ifRevision: labelled.revision, changes: { labels: { segment: "blocked" } } });
    expect(a.published.map((notice) => notice.version)).toEqual([1, 2, 3, 4, 8]);

    // Past the interval, the next ordinary change is announced again.
    await sleep(noticeIntervalMs + 100);
    expect((await attach(b.ports, devices[0]!.imsi!, "10.44.0.9")).value.outcome).toBe("applied");
    expect(b.published.map((notice) => notice.version)).toEqual([7, 9]);
  });

  it("announce the end of a burst from the backstop once the interval has passed, once however many readers find it", async () => {
    const tenantId = "ten_notice_trailing";
    const { a, attach, one, two } = await burst(tenantId, "234100000000811", "10.45.0");
    expect(a.published.map((notice) => notice.version)).toEqual([1, 2, 3]);
    const head = await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);
    expect(head).toMatchObject({ version: 4, noticedVersion: 3 });

    const told: CommitNews[] = [];
    const reader = { ...runtime.ports, feedNotifier: { publish: async (notice: CommitNews) => void told.push(notice) } };
    const covered = head.vector.flatMap((seq, shard) => (seq > 0 ? [{ tenantId, shard, seq, time: new Date().toISOString() }] : []));
    // Two history invocations see the burst's last records, within the interval of the last notice: each waits it out
    // (a Lambda before it returns), and one notice goes between them.
    const started = Date.now();
    const [first, second] = await Promise.all([catchUpFeed(covered, reader, { graceMs: 0 }), catchUpFeed(covered, reader, { graceMs: 0 })]);
    await Promise.all([first.trailing, second.trailing]);
    expect(told).toEqual([{ tenantId, version: 4 }]);
    expect(Date.now()).toBeGreaterThanOrEqual(head.noticedAt + noticeIntervalMs);
    expect(Date.now() - started).toBeLessThan(noticeIntervalMs + 2_000);
    expect(await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16)).toMatchObject({ version: 4, noticedVersion: 4 });

    // A trailing notice whose marking landed but whose answer was lost (the SDK sent it again, refused) is still sent.
    await sleep(noticeIntervalMs + 100);
    await attach(a.ports, one.imsi!, "10.45.0.3");
    await attach(a.ports, two.imsi!, "10.45.0.4");
    const later = await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);
    expect(later).toMatchObject({ version: 6, noticedVersion: 5 });
    const db = runtime.ports.db;
    const twice = {
      ...reader,
      db: {
        send: async (command: Parameters<typeof db.send>[0]) => {
          const answer = await db.send(command);
          if (command instanceof UpdateCommand) return db.send(command);
          return answer;
        },
      } as typeof db,
    };
    const laterCovered = later.vector.flatMap((seq, shard) => (seq > 0 ? [{ tenantId, shard, seq, time: new Date().toISOString() }] : []));
    await (await catchUpFeed(laterCovered, twice, { graceMs: 0 })).trailing;
    expect(told).toEqual([
      { tenantId, version: 4 },
      { tenantId, version: 6 },
    ]);

    // Told already: a later reader sends nothing.
    await (await catchUpFeed(laterCovered, reader, { graceMs: 0 })).trailing;
    expect(told).toHaveLength(2);
  });

  it("have one history invocation wait for a burst's trailing notice, the others return at once, across head moves", async () => {
    const tenantId = "ten_notice_trailing_one";
    const { a, attach, one } = await burst(tenantId, "234100000000821", "10.46.0");
    expect(await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16)).toMatchObject({ version: 4, noticedVersion: 3 });

    const told: CommitNews[] = [];
    const reader = { ...runtime.ports, feedNotifier: { publish: async (notice: CommitNews) => void told.push(notice) } };
    /** A history invocation for the records up to the head: how long it takes, its trailing notice awaited. */
    const invocation = async () => {
      const head = await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);
      const covered = head.vector.flatMap((seq, shard) => (seq > 0 ? [{ tenantId, shard, seq, time: new Date().toISOString() }] : []));
      const started = Date.now();
      await (await catchUpFeed(covered, reader, { graceMs: 0 })).trailing;
      return Date.now() - started;
    };
    // The first to find version 4 untold takes the trailing notice on (the head says so) and waits for the interval.
    const first = invocation();
    await expect.poll(async () => (await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16)).trailingFor).toBe(3);
    // Another change within the interval moves the head, unannounced: the head still says who tells of it.
    await attach(a.ports, one.imsi!, "10.46.0.3");
    expect(await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16)).toMatchObject({
      version: 5,
      noticedVersion: 3,
      trailingFor: 3,
    });
    // Three more invocations (other stream shards of the tenant) find versions 4 and 5 untold and return at once.
    const others = await Promise.all([invocation(), invocation(), invocation()]);
    expect(Math.max(...others)).toBeLessThan(noticeIntervalMs / 2);
    // The one that waited tells of everything up to the head it reads after the interval, once.
    await first;
    expect(told).toEqual([{ tenantId, version: 5 }]);
    expect(await readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16)).toMatchObject({ version: 5, noticedVersion: 5 });
  });

  // A helper review's reproductions (2026-12-04): a run within the interval whose head move straddles the trailing
  // notice. The sequencer wrote the whole head item, as it had read it, and so wrote back the claim or the notice state.
  describe("a run within the interval whose head move lands around the trailing notice", () => {
    it("after the notice: the next invocation takes the next trailing notice on, and tells of the run's version", async () => {
      const tenantId = "ten_trailing_after";
      const { attach, one } = await burst(tenantId, "234100000000931", "10.93.0");
      const told: CommitNews[] = [];
      const reader = { ...runtime.ports, feedNotifier: { publish: async (notice: CommitNews) => void told.push(notice) } };
      const claimant = await historyInvocation(tenantId, reader);
      await expect.poll(async () => (await headOf(tenantId)).trailingFor).toBe(3);
      // A run within the interval reads the head (claimed) and is slow to move it (a retry, a throttle).
      const gated = gatedHeadMove(tenantId);
      const applied = attach(instance(gated.wrap).ports, one.imsi!, "10.93.0.3");
      await gated.reached;
      await claimant.trailing;
      expect(told).toEqual([{ tenantId, version: 4 }]);
      gated.open();
      await applied;
      // The move leaves the notice state as the notice wrote it: version 5 is untold, and no claim stands for it.
      expect(await headOf(tenantId)).toMatchObject({ version: 5, noticedVersion: 4 });
      await (await historyInvocation(tenantId, reader)).trailing;
      expect(told).toEqual([
        { tenantId, version: 4 },
        { tenantId, version: 5 },
      ]);
    });

    it("between the claimant's read and its mark: the claimant marks the moved head, and tells of it", async () => {
      const tenantId = "ten_trailing_between";
      const { attach, one } = await burst(tenantId, "234100000000941", "10.94.0");
      const told: CommitNews[] = [];
      const gated = gatedHeadMove(tenantId);
      const db = runtime.ports.db;
      // The claimant's mark is sent just after the run's head move lands.
      const readerDb = {
        send: async (command: Command) => {
          if (command instanceof UpdateCommand && String(command.input.UpdateExpression).startsWith("SET noticedVersion")) {
            gated.open();
            await gated.moved;
          }
          return db.send(command);
        },
      } as Db;
      const reader = { ...runtime.ports, db: readerDb, feedNotifier: { publish: async (notice: CommitNews) => void told.push(notice) } };
      const claimant = await historyInvocation(tenantId, reader);
      await expect.poll(async () => (await headOf(tenantId)).trailingFor).toBe(3);
      const b = instance(gated.wrap);
      const applied = attach(b.ports, one.imsi!, "10.94.0.3");
      await claimant.trailing;
      await applied;
      expect(b.published).toEqual([]);
      expect(told).toEqual([{ tenantId, version: 5 }]);
      expect(await headOf(tenantId)).toMatchObject({ version: 5, noticedVersion: 5 });
    });

    it("a claim whose answer was lost and whose head cannot be read back still waits and tells", async () => {
      const tenantId = "ten_trailing_unread";
      await burst(tenantId, "234100000000961", "10.96.0");
      const told: CommitNews[] = [];
      const db = runtime.ports.db;
      let failReadBack = false;
      // The claim lands, its answer is lost, the SDK sends it again (refused by its condition), and the read that would
      // say whose it is fails too.
      const lossy = {
        send: async (command: Command) => {
          if (command instanceof UpdateCommand && String(command.input.UpdateExpression).includes("trailingFor")) {
            await db.send(command);
            failReadBack = true;
            return db.send(command);
          }
          if (failReadBack && command instanceof GetCommand) {
            failReadBack = false;
            throw Object.assign(new Error("timed out"), { name: "TimeoutError" });
          }
          return db.send(command);
        },
      } as Db;
      const reader = { ...runtime.ports, db: lossy, feedNotifier: { publish: async (notice: CommitNews) => void told.push(notice) } };
      await (await historyInvocation(tenantId, reader)).trailing;
      expect(told).toEqual([{ tenantId, version: 4 }]);
    });

    it("before the claim, from a read without it: the claim stands, and a second invocation returns at once", async () => {
      const tenantId = "ten_trailing_before";
      const { attach, one } = await burst(tenantId, "234100000000951", "10.95.0");
      const told: CommitNews[] = [];
      const reader = { ...runtime.ports, feedNotifier: { publish: async (notice: CommitNews) => void told.push(notice) } };
      const gated = gatedHeadMove(tenantId);
      const applied = attach(instance(gated.wrap).ports, one.imsi!, "10.95.0.3");
      await gated.reached;
      const claimant = await historyInvocation(tenantId, reader);
      await expect.poll(async () => (await headOf(tenantId)).trailingFor).toBe(3);
      gated.open();
      await applied;
      expect(await headOf(tenantId)).toMatchObject({ version: 5, noticedVersion: 3, trailingFor: 3 });
      const started = Date.now();
      await (await historyInvocation(tenantId, reader)).trailing;
      expect(Date.now() - started).toBeLessThan(noticeIntervalMs / 2);
      await claimant.trailing;
      expect(told).toEqual([{ tenantId, version: 5 }]);
    });
  });

  it("a run of several versions moves the head in its transaction, leaving the notice fields when it does not announce", async () => {
    // From a helper review: the multi-version run's head update (more than 200 entries in one run) had no test.
    const tenantId = "ten_trailing_multi";
    const { ctx, attach } = tenant(tenantId);
    // An instance that commits but whose own sequencing is refused: its changes wait for the runs made here.
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    refuseSequencerReads(client, () => true);
    const committer = instance(() => client);
    const committed = async () =>
      (
        await Promise.all(Array.from({ length: 16 }, (_, shard) => readShardHead(runtime.ports.db, runtime.ports.tables, tenantId, shard)))
      ).reduce((sum, head) => sum + head.seq, 0);
    const registrations = Array.from({ length: 201 }, (_, n) =>
      registerDevice(committer.ports, ctx, { imsi: `23410000001${String(n).padStart(4, "0")}` }),
    );
    await expect.poll(committed, { timeout: 20_000, interval: 50 }).toBe(201);
    // The first move creates the head, and announces.
    expect(await sequenceOnce(runtime.ports.db, runtime.ports.tables, tenantId, 16, new Date())).toMatchObject({
      since: 0,
      version: 2,
      announce: true,
    });
    const devices = (await Promise.all(registrations)).map((registered) => registered.value);
    const head = await headOf(tenantId);
    expect(head).toMatchObject({ version: 2, noticedVersion: 2 });
    // A trailing notice taken on, then 101 attaches (2 entries each) sequenced within the interval: 2 versions, untold.
    await runtime.ports.db.send(
      new UpdateCommand({
        TableName: runtime.ports.tables.control,
        Key: feedHeadKey(tenantId),
        UpdateExpression: "SET trailingFor = :told, trailingBy = :token",
        ExpressionAttributeValues: { ":told": 2, ":token": "taken" },
      }),
    );
    const attaches = devices.slice(0, 101).map((device, n) => attach(committer.ports, device.imsi!, `10.98.0.${n + 1}`));
    await expect.poll(committed, { timeout: 20_000, interval: 50 }).toBe(302);
    const second = await sequenceOnce(runtime.ports.db, runtime.ports.tables, tenantId, 16, new Date(head.noticedAt + 100));
    expect(second).toMatchObject({ since: 2, version: 4, announce: false });
    expect(await headOf(tenantId)).toEqual({
      ...head,
      version: 4,
      vector: (second as unknown as { vector: number[] }).vector,
      hash: expect.any(String),
      trailingFor: 2,
      trailingBy: "taken",
    });
    await Promise.allSettled(attaches);
    client.destroy();
  }, 60_000);
});
