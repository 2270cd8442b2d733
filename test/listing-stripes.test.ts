/**
 * A tenant's listings in the identity table's `byTenant` index (devices, revocations, IP bindings) are striped over
 * 16 index partitions (device/keys.ts). On one partition a re-attach storm of 2,000 changes/s would write ~2,000 binding
 * copies a second into one index partition (1,000 write units a second at most), and DynamoDB throttles the table's
 * own writes when an index cannot keep up. These tests read the index as DynamoDB keeps it (DynamoDB Local): where the
 * copies land, and that every reader (the feed snapshot, the device listing) still lists each item once, including
 * items listed under the one partition of before.
 */
import { GetCommand, QueryCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { bindingKey, bindingPartitions, legacyBindingKey } from "@simroot/core/device/keys";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  actOnDevice,
  applyOperatorEvent,
  createTenantWithAdminKey,
  documentClient,
  feedDeltas,
  feedSnapshot,
  ingestedEvent,
  resolveDevice,
  listDevices,
  memorySigner,
  portsFor,
  registerDevice,
  snapshotReplaySeconds,
  type FeedEntry,
} from "@simroot/core";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";
import { keptAsBefore } from "./support/store-faults.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

/** A tenant of `count` devices, each attached with an address, the first `revoked` of them revoked (which releases theirs). */
async function fleet(tenantId: string, count: number, revoked: number) {
  const ctx = { tenantId, actor: "system:test", requestId: `req_${tenantId}` };
  const devices: string[] = [];
  for (let index = 0; index < count; index++) {
    const imsi = `20801${String(index).padStart(10, "0")}`;
    devices.push((await registerDevice(runtime.ports, ctx, { imsi })).value.id);
    const normalized = {
      type: "sim.attached",
      dedupeKey: `attach-${index}`,
      occurredAt: new Date(Date.UTC(2026, 11, 3, 8, 0, index)).toISOString(),
      device: { imsi },
      sourceType: "test",
      data: { bearer: "cellular", ipv4: `10.40.${Math.floor(index / 200)}.${(index % 200) + 1}` },
    };
    const event = ingestedEvent({ ...ctx, actor: "source:src_fleet" }, "src_fleet", "simroot", normalized as never, new Date());
    expect((await applyOperatorEvent(runtime.ports, event)).value.outcome).toBe("applied");
  }
  for (const id of devices.slice(0, revoked)) await actOnDevice(runtime.ports, ctx, { id, action: "revoke", reason: "stolen" });
  return { ctx, devices };
}

/** How many index items each `byTenant` partition of the tenant's `listing` holds. */
async function partitionSizes(tenantId: string, listing: string) {
  const sizes = new Map<string, number>();
  let start: Record<string, unknown> | undefined;
  do {
    const page = await runtime.ports.db.send(
      new ScanCommand({ TableName: runtime.ports.tables.identity, IndexName: "byTenant", ExclusiveStartKey: start }),
    );
    for (const item of page.Items ?? []) {
      const partition = String(item.gsi1pk);
      if (partition.startsWith(`T#${tenantId}#${listing}`)) sizes.set(partition, (sizes.get(partition) ?? 0) + 1);
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return sizes;
}

/** How many bindings (not release tombstones) each of the tenant's binding partitions of the table holds. */
async function bindingPartitionSizes(tenantId: string) {
  const sizes = new Map<string, number>();
  for (const partition of bindingPartitions(tenantId)) {
    const { Items } = await runtime.ports.db.send(
      new QueryCommand({
        TableName: runtime.ports.tables.identity,
        KeyConditionExpression: "pk = :p",
        FilterExpression: "attribute_exists(deviceId)",
        ExpressionAttributeValues: { ":p": partition },
      }),
    );
    if (Items && Items.length > 0) sizes.set(partition, Items.length);
  }
  return sizes;
}

/** Moves an item's index copy back under the tenant's one partition of before the striping. */
async function listUnstriped(key: { pk: string; sk: string }, partition: string) {
  await runtime.ports.db.send(
    new UpdateCommand({
      TableName: runtime.ports.tables.identity,
      Key: key,
      UpdateExpression: "SET gsi1pk = :legacy",
      ExpressionAttributeValues: { ":legacy": partition },
    }),
  );
}

// Each case builds a fleet of up to 96 devices through the API: about 15 s alone on a 2-core machine, twice that beside
// the rest of the suite (it timed out at 30 s in a clean-clone run of 166 files).
describe("striped tenant listings", { timeout: 90_000 }, () => {
  it("spread a tenant's devices and revocations over 16 index partitions and its bindings over 16 of the table, none taking a large share", async () => {
    const tenantId = "ten_spread";
    await fleet(tenantId, 96, 32);
    // Bindings are kept in the table's own partitions: none is copied into the index.
    expect(await partitionSizes(tenantId, "binding")).toEqual(new Map());
    for (const [listing, expected] of [
      ["device", 96],
      ["binding", 64],
      ["revoked", 32],
    ] as const) {
      const sizes = listing === "binding" ? await bindingPartitionSizes(tenantId) : await partitionSizes(tenantId, listing);
      const total = [...sizes.values()].reduce((sum, size) => sum + size, 0);
      expect([listing, total]).toEqual([listing, expected]);
      // 1/16 of the items each on average; one partition would hold them all. The ids are random, so the bounds are
      // set where chance alone fails them about once in 2.5 million runs at 32 items (at most 12 in one partition:
      // 4e-7; fewer than 8 partitions used: 4e-8) and more rarely with more: `expected / 4` failed 0.17% of runs.
      expect([listing, sizes.size >= 8]).toEqual([listing, true]);
      expect([listing, Math.max(...sizes.values()) <= (expected * 3) / 8]).toEqual([listing, true]);
      expect([...sizes.keys()].every((partition) => /#\d\d$/.test(partition))).toBe(true);
    }
  });

  it("are read whole by the snapshot and the device listing at every page size, items of the former partition included", async () => {
    const tenantId = "ten_stripes";
    const { devices } = await fleet(tenantId, 30, 4);
    // Items written before the striping, still under the one partition: a device, a binding, a revocation.
    await listUnstriped({ pk: `D#${tenantId}#${devices[10]}`, sk: "device" }, `T#${tenantId}#device`);
    await keptAsBefore(runtime.ports, tenantId, "10.40.0.12");
    await listUnstriped({ pk: `R#${tenantId}#${devices[0]}`, sk: "revoked" }, `T#${tenantId}#revoked`);
    expect((await partitionSizes(tenantId, "device")).get(`T#${tenantId}#device`)).toBe(1);

    // Read a minute later: nothing falls in the replay window, so the pages carry only what the listings hold.
    const later = () => new Date(Date.now() + (snapshotReplaySeconds + 60) * 1000);
    const ports = portsFor(runtime.ports.db, runtime.ports.tables, runtime.bus, later);
    const signer = memorySigner();
    const addresses = devices
      .map((_, index) => `10.40.0.${index + 1}`)
      .slice(4)
      .sort();
    for (const limit of [1, 2, 3, 7, 16, 100]) {
      const listed: FeedEntry[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await feedSnapshot(ports, signer, tenantId, cursor, limit);
        listed.push(...page.entries.filter((entry) => entry.kind === "device" || entry.kind === "binding"));
        expect(page.entries.length).toBeLessThanOrEqual(limit + 2); // the first page also carries the settings
        cursor = page.next;
        pages++;
      } while (cursor);
      const keys = (kind: string) => listed.filter((entry) => entry.kind === kind).map((entry) => entry.key);
      // Revocations come first, then every device (the revoked ones again), then the bindings: each once per phase.
      const revokedFirst = keys("device").slice(0, 4);
      expect([limit, [...revokedFirst].sort()]).toEqual([limit, [...devices.slice(0, 4)].sort()]);
      expect([limit, [...keys("device").slice(4)].sort()]).toEqual([limit, [...devices].sort()]);
      expect([limit, [...keys("binding")].sort()]).toEqual([limit, addresses]);
      if (limit === 1) expect(pages).toBeGreaterThan(60);
    }

    for (const limit of [1, 4, 7, 500]) {
      const ids: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await listDevices(runtime.ports, { tenantId, actor: "system:test", requestId: "req_list" }, { limit, cursor });
        expect(page.items.length).toBeLessThanOrEqual(limit);
        ids.push(...page.items.map((device) => device.id));
        cursor = page.next;
      } while (cursor);
      // In id (registration) order, each once, the device under the former partition among them.
      expect([limit, ids]).toEqual([limit, [...devices].sort()]);
    }
  });

  it("lists every device once when one partition's read stops at DynamoDB's 1 MB a query, short of the page's limit", async () => {
    const tenantId = "ten_stripes_1mb";
    const ctx = { tenantId, actor: "system:test", requestId: "req_1mb" };
    // 64 labels of 126 bytes: index copies of ~8 KB, so a query stops after ~125 of them whatever its limit.
    const labels = Object.fromEntries(
      Array.from({ length: 64 }, (_, index) => [`k${String(index).padStart(2, "0")}${"a".repeat(59)}`, "v".repeat(63)]),
    );
    const devices: string[] = [];
    for (let index = 0; index < 200; index++) {
      devices.push((await registerDevice(runtime.ports, ctx, { imsi: `20802${String(index).padStart(10, "0")}`, labels })).value.id);
    }
    devices.sort();
    // The lowest 160 ids under the former partition: its read stops short, the stripes' reads return ids beyond it.
    for (const id of devices.slice(0, 160)) await listUnstriped({ pk: `D#${tenantId}#${id}`, sk: "device" }, `T#${tenantId}#device`);
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await listDevices(runtime.ports, ctx, { limit: 500, cursor });
      ids.push(...page.items.map((device) => device.id));
      cursor = page.next;
    } while (cursor);
    expect(ids).toEqual(devices);
  }, 120_000);

  it("moves an item of the former partition to its stripe when it is next written", async () => {
    const tenantId = "ten_moved";
    const { ctx, devices } = await fleet(tenantId, 2, 0);
    await listUnstriped({ pk: `D#${tenantId}#${devices[0]}`, sk: "device" }, `T#${tenantId}#device`);
    await actOnDevice(runtime.ports, ctx, { id: devices[0]!, action: "quarantine", reason: "check" });
    const listed = await runtime.ports.db.send(
      new QueryCommand({
        TableName: runtime.ports.tables.identity,
        IndexName: "byTenant",
        KeyConditionExpression: "gsi1pk = :p",
        ExpressionAttributeValues: { ":p": `T#${tenantId}#device` },
      }),
    );
    expect(listed.Items ?? []).toEqual([]);
    expect([...(await partitionSizes(tenantId, "device")).values()].reduce((sum, size) => sum + size, 0)).toBe(2);
  });

  it("reads a binding kept as before (by its address, and in the snapshot) and moves it where bindings are kept now on its next write", async () => {
    const tenantId = "ten_binding_moved";
    const { ctx, devices } = await fleet(tenantId, 2, 0);
    const address = "10.40.0.1";
    const before = await keptAsBefore(runtime.ports, tenantId, address);
    expect(before.deviceId).toBe(devices[0]);
    expect(await resolveDevice(runtime.ports, tenantId, { ip: address })).toBe(devices[0]);
    const version = (await feedSnapshot(runtime.ports, memorySigner(), tenantId, undefined, 100)).signed.head.version;

    // The other device takes the address: the item moves, at the next revision, and the former one is gone.
    const take = {
      type: "sim.attached",
      dedupeKey: "take",
      occurredAt: new Date(Date.UTC(2026, 11, 3, 9, 0, 0)).toISOString(),
      device: { imsi: "208010000000001" },
      sourceType: "test",
      data: { bearer: "cellular", ipv4: address },
    };
    const event = ingestedEvent({ ...ctx, actor: "source:src_fleet" }, "src_fleet", "simroot", take as never, new Date());
    expect((await applyOperatorEvent(runtime.ports, event)).value.outcome).toBe("applied");
    const read = (key: { pk: string; sk: string }) =>
      runtime.ports.db.send(new GetCommand({ TableName: runtime.ports.tables.identity, Key: key, ConsistentRead: true }));
    expect((await read(legacyBindingKey(tenantId, address))).Item).toBeUndefined();
    const moved = (await read(bindingKey(tenantId, address))).Item;
    expect([moved?.deviceId, moved?.rev]).toEqual([devices[1], Number(before.rev) + 1]);
    expect(await resolveDevice(runtime.ports, tenantId, { ip: address })).toBe(devices[1]);
    // PEPs learn the taker, at that revision's change, and a snapshot lists the address once, with the taker.
    await runtime.ports.ledger.sequence(tenantId);
    const answer = await feedDeltas(runtime.ports, memorySigner(), tenantId, { since: version, limit: 100, waitMs: 0 });
    if (answer.kind !== "response") throw new Error("no deltas");
    expect(
      answer.response.entries.filter((entry) => entry.kind === "binding" && entry.key === address).map((entry) => entry.value?.deviceId),
    ).toEqual([devices[1]]);
    const later = () => new Date(Date.now() + (snapshotReplaySeconds + 60) * 1000);
    const ports = portsFor(runtime.ports.db, runtime.ports.tables, runtime.bus, later);
    const listed: FeedEntry[] = [];
    let cursor: string | undefined;
    do {
      const page = await feedSnapshot(ports, memorySigner(), tenantId, cursor, 1);
      listed.push(...page.entries.filter((entry) => entry.kind === "binding" && entry.key === address));
      cursor = page.next;
    } while (cursor);
    expect(listed.map((entry) => entry.value?.deviceId)).toEqual([devices[1]]);
  });
});

describe("an empty tenant's first snapshot", () => {
  /** A store client that notes every request's command, table and key, and the round trips: a request sent with none in flight starts one. */
  function counted() {
    const client = documentClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1" });
    const seen = { inFlight: 0, roundTrips: [] as string[][] };
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { TableName?: string; IndexName?: string; Key?: { sk?: unknown } };
        const table =
          input.TableName === runtime.ports.tables.identity
            ? "identity"
            : input.TableName === runtime.ports.tables.control
              ? "control"
              : "audit";
        const request = `${(context as { commandName?: string }).commandName} ${table}${input.IndexName ? `/${input.IndexName}` : ""}${input.Key ? ` ${String(input.Key.sk)}` : ""}`;
        if (seen.inFlight++ === 0) seen.roundTrips.push([]);
        seen.roundTrips.at(-1)!.push(request);
        try {
          return await next(args);
        } finally {
          seen.inFlight--;
        }
      },
      { step: "initialize", name: "countRoundTrips" },
    );
    const count = (round: string[], request: string) => round.filter((sent) => sent === request).length;
    return { client, seen, count };
  }

  it("takes 3 round trips: the head beside the epoch, every partition of the index beside the settings and policies, the table's", async () => {
    const tenantId = "ten_empty_snapshot";
    const { client, seen, count } = counted();
    const page = await feedSnapshot(portsFor(client, runtime.ports.tables, runtime.bus), memorySigner(), tenantId, undefined, 100);
    expect(page.next).toBeUndefined();
    expect(page.entries.filter((entry) => entry.kind === "device" || entry.kind === "binding")).toEqual([]);
    // Every partition is still read (17 a listing, 16 more for bindings: 67), the index's in one round trip and the
    // table's in the next, where one listing after another took 12 (4 partitions, 8, then the rest) and the whole page 16.
    const [first, second, third] = seen.roundTrips;
    expect(seen.roundTrips).toHaveLength(3);
    expect([...first!].sort()).toEqual(["GetItemCommand control feed", "GetItemCommand control feed-epoch"]);
    expect(count(second!, "QueryCommand identity/byTenant")).toBe(51);
    expect(second).toHaveLength(51 + 4);
    expect(count(third!, "QueryCommand identity")).toBe(16);
    // Where the replay starts, read beside the table's partitions (nothing in the window: no version to replay).
    expect(count(third!, "QueryCommand audit")).toBe(1);
    expect(seen.roundTrips.flat()).toHaveLength(74);
    client.destroy();
  });

  it("reads the feed head once when it replays a version within the window (a tenant just created): 4 round trips", async () => {
    const { tenant } = await createTenantWithAdminKey(runtime.ports, "fresh");
    const { client, seen, count } = counted();
    const page = await feedSnapshot(portsFor(client, runtime.ports.tables, runtime.bus), memorySigner(), tenant.id, undefined, 100);
    expect(page.next).toBeUndefined();
    expect(page.signed.head.version).toBeGreaterThan(0);
    // The replayed version is anchored to the head item the page read first, not to a second read of it (18 round trips before).
    expect(seen.roundTrips).toHaveLength(4);
    expect(count(seen.roundTrips.flat(), "GetItemCommand control feed")).toBe(1);
    expect(seen.roundTrips[3]).toEqual(["QueryCommand audit"]);
    client.destroy();
  });
});
