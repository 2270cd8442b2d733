/**
 * The feed's backstop (core ledger/catch-up.ts): a committed change its committer never sequenced (the Lambda
 * instance stopped at its timeout, was frozen once it answered, or the store refused its sequencing for longer than
 * its commit waits) reaches the feed within seconds, sequenced by the history reader of the audit stream, instead of
 * waiting for the tenant's next change, which for an idle tenant may never come.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  catchUpFeed,
  documentClient,
  feedPartition,
  feedSortKey,
  feedVersionSchema,
  portsFor,
  registerDevice,
  reprojectHistory,
  shardOfSubject,
  verifyAuditChain,
  type Ports,
} from "@simroot/core";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { readFeedHead } from "@simroot/core/ledger/sequencer";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";
import { failHeadMoves, feedItems, refuseSequencerReads } from "./support/store-faults.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

const ctxFor = (tenantId: string) => ({ tenantId, actor: "system:test", requestId: "req_test" });
const headOf = async (tenantId: string) => readFeedHead(runtime.ports.db, runtime.ports.tables, tenantId, 16);

/** The devices the tenant's feed versions carry. */
const devicesInFeed = async (tenantId: string) => devicesInFeedOf(runtime, tenantId);
const devicesInFeedOf = async (on: TestRuntime, tenantId: string) =>
  (await feedItems(on.ports, tenantId))
    .flatMap((item) => feedVersionSchema.shape.entries.parse(item.entries) as { kind: string; key: string }[])
    .filter((entry) => entry.kind === "device")
    .map((entry) => entry.key);

describe("the feed's backstop", () => {
  it("sequences a committed change its committer never sequenced (stopped, frozen, refused), within seconds", async () => {
    const tenantId = "ten_backstop";
    // The committing instance commits, then every sequencing it tries is refused: as good as gone after its commit.
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    refuseSequencerReads(client, () => true);
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const committedAt = Date.now();
    const committed = registerDevice(ports, ctxFor(tenantId), { imsi: "208010000000951" });
    // Its commit answers once its wait for the feed ends (5 s); the history reader has sequenced the tenant before.
    await expect.poll(async () => (await headOf(tenantId)).version, { timeout: 4_500, interval: 100 }).toBeGreaterThan(0);
    expect(Date.now() - committedAt).toBeLessThan(4_500);
    const device = await committed;
    expect(await devicesInFeed(tenantId)).toEqual([device.value.id]);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true });
    client.destroy();
  }, 20_000);

  it("moves the head of an idle tenant to a version its writer left past it", async () => {
    const tenantId = "ten_backstop_version";
    // The committer sequences its change, but the head never moves for it: the version is written, past the head.
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    failHeadMoves(client, tenantId);
    const ports: Ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const committed = registerDevice(ports, ctxFor(tenantId), { imsi: "208010000000952" });
    await expect.poll(async () => (await headOf(tenantId)).version, { timeout: 4_500, interval: 100 }).toBe(1);
    const device = await committed;
    expect(await devicesInFeed(tenantId)).toEqual([device.value.id]);
    expect(await verifyAuditChain(runtime.ports, tenantId)).toMatchObject({ valid: true });
    client.destroy();
  }, 20_000);
});

describe("the backstop's catch-up of one batch", () => {
  // A runtime whose own history reader does not catch up: the calls below are the only ones.
  let quiet: TestRuntime;
  beforeAll(async () => {
    quiet = await startTestRuntime({ feedBackstop: false });
  });
  afterAll(() => quiet.stop());

  /** Commits a device through an instance whose sequencing is refused: its audit record, in no feed version. */
  async function leftBehind(tenantId: string, imsi: string) {
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    refuseSequencerReads(client, () => true);
    const device = await registerDevice(portsFor(client, quiet.ports.tables, quiet.bus), ctxFor(tenantId), { imsi });
    client.destroy();
    expect(await feedItems(quiet.ports, tenantId)).toEqual([]);
    return [{ tenantId, shard: shardOfSubject(device.value.id), seq: 1, time: new Date(0).toISOString() }];
  }

  it("keeps sequencing through store refusals within its budget, reports what is still uncovered after it, and awaits its notice", async () => {
    const tenantId = "ten_catch_up_refused";
    const records = await leftBehind(tenantId, "208010000000961");
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    // Refused for 1.5 s: a budget of 300 ms ends with the records uncovered (the stream gives them again).
    const until = Date.now() + 1_500;
    refuseSequencerReads(client, () => Date.now() < until);
    const published: number[] = [];
    const feedNotifier = {
      publish: async ({ version }: { tenantId: string; version: number }) => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        published.push(version);
      },
    };
    const ports = { db: client, tables: quiet.ports.tables, feedNotifier };
    expect(await catchUpFeed(records, ports, { budgetMs: 300 })).toMatchObject({ uncovered: [tenantId], sequenced: [] });
    // Given again, with time enough: sequenced through the refusals, and the notice sent before it returns.
    expect(await catchUpFeed(records, ports, { budgetMs: 10_000 })).toMatchObject({ uncovered: [], sequenced: [tenantId] });
    expect((await readFeedHead(quiet.ports.db, quiet.ports.tables, tenantId, 16)).version).toBe(1);
    expect(published).toEqual([1]);
    client.destroy();
  }, 30_000);

  it("brings the feed to the records whose history is written again, when the stream's reader failed past their stay (review 103)", async () => {
    const tenantId = "ten_catch_up_reprojected";
    await leftBehind(tenantId, "208010000000964");
    // Its stream reader, the backstop, failed for the records' 24 hours on the stream: the operator reprojects.
    await reprojectHistory(quiet.ports, tenantId);
    expect((await readFeedHead(quiet.ports.db, quiet.ports.tables, tenantId, 16)).version).toBe(1);
    expect(await devicesInFeedOf(quiet, tenantId)).toHaveLength(1);
  });

  it("leaves a tenant whose feed is blocked to its alarm, at once, without holding the batch", async () => {
    const tenantId = "ten_catch_up_blocked";
    const records = await leftBehind(tenantId, "208010000000962");
    // A version past the head that no sequencing wrote (written into the audit table by hand): the feed fails closed.
    await quiet.ports.db.send(
      new PutCommand({
        TableName: quiet.ports.tables.audit,
        Item: { pk: feedPartition(tenantId), sk: feedSortKey(1), version: 1, forged: true },
      }),
    );
    const started = Date.now();
    const { trailing: _blockedTrailing, ...blocked } = await catchUpFeed(records, quiet.ports, { budgetMs: 20_000 });
    expect(blocked).toEqual({ sequenced: [], uncovered: [], blocked: [tenantId] });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await readFeedHead(quiet.ports.db, quiet.ports.tables, tenantId, 16)).version).toBe(0);
  });

  it("tries again a run that stops to be tried again (a transaction conflict, not the store's refusal), not taking it for a blocked feed", async () => {
    const tenantId = "ten_catch_up_conflict";
    const records = await leftBehind(tenantId, "208010000000963");
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    let conflicts = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const tables = Object.keys((args.input as { RequestItems?: Record<string, unknown> }).RequestItems ?? {});
        const command = (context as { commandName?: string }).commandName;
        if (command?.startsWith("BatchGet") && tables.some((table) => table.endsWith("control")) && conflicts < 2) {
          conflicts++;
          throw Object.assign(new Error("Transaction is ongoing for the item"), {
            name: "TransactionConflictException",
            $metadata: { httpStatusCode: 400 },
          });
        }
        return next(args);
      },
      { step: "initialize", name: "conflict" },
    );
    const result = await catchUpFeed(records, { db: client, tables: quiet.ports.tables }, { budgetMs: 10_000 });
    const { trailing: _trailing, ...outcome } = result;
    expect([conflicts, outcome]).toEqual([2, { sequenced: [tenantId], uncovered: [], blocked: [] }]);
    client.destroy();
  });
});
