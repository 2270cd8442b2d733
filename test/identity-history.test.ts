/**
 * History that does not depend on delivery order: a session whose end commits before its
 * start still reaches the audit trail and the timeline, and "who held this IP at that time?"
 * is answered either way.
 */
import { GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import {
  applyOperatorEvent,
  createTenantWithAdminKey,
  decodeHistory,
  documentClient,
  forgetDevice,
  ingestedEvent,
  portsFor,
  registerDevice,
} from "@simroot/core";
import { deviceKey } from "@simroot/core/device/keys";
import { leasePartition } from "@simroot/core/identity/lease-item";
import { parkedNaming } from "@simroot/core/ingest/parked";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simrootSource, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

let sequence = 0;
const base = Date.now() - 3_600_000;
const at = (minute: number) => new Date(base + minute * 60_000).toISOString();
const fact = (type: string, imsi: string, data: Record<string, unknown>, minute: number) => ({
  type,
  dedupeKey: `history-${++sequence}`,
  occurredAt: at(minute),
  device: { imsi },
  sourceType: type,
  data,
});

async function setup() {
  const tenant = await tenantClient(runtime);
  const report = await simrootSource(runtime, tenant);
  // One fact per request, each applied before the next is sent.
  const post = async (...facts: unknown[]) => {
    for (const one of facts) await report(one);
  };
  const lookup = async (ip: string, minute: number) => {
    const response = await tenant.call("GET", `/v1/devices/lookup?ip=${ip}&at=${encodeURIComponent(at(minute))}`);
    return response.status === 200 ? response.json.id : response.status;
  };
  return { tenant, post, lookup };
}

describe("history independent of delivery order", () => {
  it("records a session whose end arrived before its start, on the timeline and in the audit trail", async () => {
    const { tenant, post } = await setup();
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011110000001" })).json;
    await post(
      fact("sim.detached", "208011110000001", { bearer: "cellular" }, 20),
      fact("sim.attached", "208011110000001", { bearer: "cellular", ipv4: "10.46.1.22" }, 10),
    );
    const timeline = (await tenant.call("GET", `/v1/devices/${device.id}/timeline`)).json.items;
    const session = timeline.find((entry: { type: string }) => entry.type === "sim.session-recorded");
    expect(session?.data).toMatchObject({ ipv4: "10.46.1.22", since: at(10), until: at(20) });
    const audit = (await tenant.call("GET", `/v1/audit?subject=${device.id}`)).json.items;
    expect(audit.map((record: { action: string }) => record.action)).toContain("sim.session-recorded");
  });

  it("answers who held an IP at a time, whatever order the sessions arrived in", async () => {
    const { tenant, post, lookup } = await setup();
    const first = (await tenant.call("POST", "/v1/devices", { imsi: "208011110000002" })).json;
    const second = (await tenant.call("POST", "/v1/devices", { imsi: "208011110000003" })).json;
    await post(
      fact("sim.detached", "208011110000002", { bearer: "cellular" }, 30), // the first device's end arrives first
      fact("sim.attached", "208011110000003", { bearer: "cellular", ipv4: "10.46.1.23" }, 40),
      fact("sim.attached", "208011110000002", { bearer: "cellular", ipv4: "10.46.1.23" }, 10),
    );
    expect(await lookup("10.46.1.23", 5)).toBe(404);
    expect(await lookup("10.46.1.23", 15)).toBe(first.id);
    expect(await lookup("10.46.1.23", 35)).toBe(404);
    expect(await lookup("10.46.1.23", 45)).toBe(second.id);
  });
});

describe("who held an address, from facts out of order (review 125)", () => {
  it("names nobody for an address its device gave up, when the detach arrived after the next attach", async () => {
    const { tenant, post, lookup } = await setup();
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208012220000001" })).json;
    await post(
      fact("sim.attached", "208012220000001", { bearer: "cellular", ipv4: "10.46.2.1" }, 10),
      fact("sim.attached", "208012220000001", { bearer: "cellular", ipv4: "10.46.2.2" }, 30),
      fact("sim.detached", "208012220000001", { bearer: "cellular" }, 20), // between them, reported last
    );
    await runtime.history.caughtUp();
    expect(await lookup("10.46.2.1", 15)).toBe(device.id);
    expect(await lookup("10.46.2.1", 25)).toBe(404);
    expect(await lookup("10.46.2.2", 35)).toBe(device.id);
    // The timeline says when the session ended.
    const timeline = (await tenant.call("GET", `/v1/devices/${device.id}/timeline?limit=100`)).json.items as {
      type: string;
      data: Record<string, unknown>;
    }[];
    expect(timeline.filter((entry) => entry.type === "sim.session-recorded").map((entry) => [entry.data.since, entry.data.until])).toEqual([
      [at(10), at(20)],
    ]);
  });

  it("names the device for an address it holds on a second bearer after the first bearer's session ended", async () => {
    const { tenant, post, lookup } = await setup();
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208012220000003" })).json;
    await post(
      fact("sim.attached", "208012220000003", { bearer: "cellular", ipv4: "10.46.2.4" }, 10),
      fact("sim.attached", "208012220000003", { bearer: "private-5g", ipv4: "10.46.2.4" }, 15),
      fact("sim.detached", "208012220000003", { bearer: "cellular" }, 20),
    );
    await runtime.history.caughtUp();
    expect(await lookup("10.46.2.4", 25)).toBe(device.id);
  });

  it("names nobody once a detach naming no bearer ended the sessions of both bearers on the address (review 126)", async () => {
    // A lease item was one per address, instant, edge and device: the two ends made one, and the other bearer's session
    // read as open for ever.
    const { tenant, post, lookup } = await setup();
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208012220000126" })).json;
    await post(
      fact("sim.attached", "208012220000126", { bearer: "cellular", ipv4: "10.46.9.4" }, 10),
      fact("sim.attached", "208012220000126", { bearer: "private-5g", ipv4: "10.46.9.4" }, 15),
      fact("sim.detached", "208012220000126", {}, 20),
    );
    await runtime.history.caughtUp();
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions).toEqual({});
    expect([await lookup("10.46.9.4", 17), await lookup("10.46.9.4", 25)]).toEqual([device.id, 404]);
  });
});

describe("the fact window as stored", () => {
  const deviceItemOf = async (tenantId: string, deviceId: string) =>
    (
      await runtime.ports.db.send(
        new GetCommand({ TableName: runtime.ports.tables.identity, Key: deviceKey(tenantId, deviceId), ConsistentRead: true }),
      )
    ).Item!;

  it("keeps a device item with a full window of 32 facts near 2 KB, so a fact's rewrite of it costs 2 write units, not 5", async () => {
    const { tenant, post } = await setup();
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011110000009" })).json;
    // Operators key events with UUIDs: random text, the part of a fact that compresses least.
    const facts = Array.from({ length: 40 }, (_, n) => ({
      ...fact(
        n % 2 === 0 ? "sim.attached" : "sim.detached",
        "208011110000009",
        n % 2 === 0 ? { bearer: "cellular", ipv4: `10.47.0.${n + 1}` } : {},
        n,
      ),
      dedupeKey: randomUUID(),
    }));
    await post(...facts);
    const item = await deviceItemOf(device.tenantId, device.id);
    const asJson = JSON.stringify({ ...item, history: decodeHistory(item.history) }).length;
    const stored = Buffer.byteLength(JSON.stringify({ ...item, history: "" })) + (item.history as Uint8Array).byteLength;
    expect(decodeHistory(item.history).facts).toHaveLength(32);
    expect(asJson).toBeGreaterThan(4_500);
    expect(stored).toBeLessThan(2_048);
    // Still the device's whole recent history: a redelivered fact of the window is a duplicate, a late one folds in order.
    await post(facts[35]!);
    const audit = (await tenant.call("GET", `/v1/audit?subject=${device.id}`)).json.items;
    expect(audit.filter((record: { action: string }) => record.action === "sim.attached")).toHaveLength(20);
  });

  it("writes no copy of a device to the listing index for a fact that changes only its sessions", async () => {
    // What each write costs, as DynamoDB bills it (DynamoDB Local reports the same), per index of the identity table.
    const client = documentClient({ endpoint: runtime.endpoint, region: "us-east-1" });
    const indexUnits: number[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if ((context as { commandName?: string }).commandName !== "TransactWriteItemsCommand") return next(args);
        (args.input as Record<string, unknown>).ReturnConsumedCapacity = "INDEXES";
        const result = await next(args);
        const consumed = (
          result.output as {
            ConsumedCapacity?: { TableName?: string; GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }> }[];
          }
        ).ConsumedCapacity;
        const identity = consumed?.find((entry) => entry.TableName === runtime.ports.tables.identity);
        indexUnits.push(identity?.GlobalSecondaryIndexes?.byTenant?.CapacityUnits ?? 0);
        return result;
      },
      { step: "initialize", name: "indexUnits" },
    );
    const ports = portsFor(client, runtime.ports.tables, runtime.bus);
    const ctx = { tenantId: "ten_index_copy", actor: "source:src_copy", requestId: "req_copy" };
    await registerDevice(ports, ctx, { imsi: "208011110000077" });
    const apply = async (type: string, minute: number, data: Record<string, unknown>) => {
      const event = ingestedEvent(ctx, "src_copy", "simroot", fact(type, "208011110000077", data, minute) as never, new Date());
      expect((await applyOperatorEvent(ports, event)).value.outcome).toBe("applied");
    };
    indexUnits.length = 0;
    // Sessions open and close on a bearer without an address: the device's state, labels and identifiers stay.
    await apply("sim.attached", 1, { bearer: "cellular" });
    await apply("sim.detached", 2, { bearer: "cellular" });
    await apply("sim.attached", 3, { bearer: "satellite" });
    expect(indexUnits).toEqual([0, 0, 0]);
    client.destroy();
  });

  it("reads a device item written before the window was compressed (a map) and folds onto it", async () => {
    const { tenant, post } = await setup();
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011110000010" })).json;
    await post(fact("sim.attached", "208011110000010", { bearer: "cellular", ipv4: "10.47.1.1" }, 1));
    const item = await deviceItemOf(device.tenantId, device.id);
    await runtime.ports.db.send(
      new PutCommand({ TableName: runtime.ports.tables.identity, Item: { ...item, history: decodeHistory(item.history) } }),
    );
    forgetDevice(runtime.ports, device.tenantId, device.id);
    await post(fact("sim.detached", "208011110000010", { bearer: "cellular" }, 2));
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions).toEqual({});
    expect(decodeHistory((await deviceItemOf(device.tenantId, device.id)).history).facts).toHaveLength(2);
  });
});

describe("remembered facts from two instances", () => {
  it("keeps every one when two instances fold facts that change nothing into one device at once", async () => {
    const { tenant } = await createTenantWithAdminKey(runtime.ports, "remembered");
    const ctx = { tenantId: tenant.id, actor: "source:src_mem", requestId: "req_mem" };
    const device = (await registerDevice(runtime.ports, ctx, { imsi: "208011110000011" })).value;
    // Two instances: separate clients, so separate device caches (each write is conditional on the revision it read).
    const instances = [
      runtime.ports,
      portsFor(documentClient({ endpoint: runtime.endpoint, region: "us-east-1" }), runtime.ports.tables, runtime.bus),
    ];
    const start = Date.UTC(2026, 10, 22, 8, 0);
    const report = (at: number, reachable: boolean) =>
      ingestedEvent(
        ctx,
        "src_mem",
        "simroot",
        {
          type: "device.reachability-changed",
          dedupeKey: randomUUID(),
          occurredAt: new Date(at).toISOString(),
          device: { imsi: "208011110000011" },
          sourceType: "test",
          data: { reachable, via: "data" },
        } as never,
        new Date(),
      );
    await applyOperatorEvent(runtime.ports, report(start, true));
    await applyOperatorEvent(runtime.ports, report(start + 600_000, true));
    // Older than the newest report, so nothing visible changes: each is only remembered (a conditional put of the device).
    const late = Array.from({ length: 12 }, (_, n) => report(start + (n + 1) * 1000, n % 2 === 0));
    const outcomes = await Promise.all(late.map((event, n) => applyOperatorEvent(instances[n % 2]!, event)));
    expect(outcomes.map((outcome) => outcome.value.outcome)).toEqual(late.map(() => "stale"));
    forgetDevice(runtime.ports, tenant.id, device.id);
    const item = await deviceItemOfDevice(tenant.id, device.id);
    expect(decodeHistory(item.history).facts).toHaveLength(14);
  });
});

describe("a device's history reported in one request", () => {
  /** `times` attaches and detaches of the device on `address`, 5 s apart, and a last attach (55: 111 facts), dated in order. */
  function flapping(imsi: string, address: string, detachedAs: Record<string, string> = { imsi }, times = 55) {
    const start = Date.now() - 20 * 60_000;
    const facts = [];
    for (let n = 0; n < times; n++) {
      facts.push(fact("sim.attached", imsi, { bearer: "cellular", ipv4: address }, 0));
      facts.push({ ...fact("sim.detached", imsi, { bearer: "cellular" }, 0), device: detachedAs });
    }
    facts.push(fact("sim.attached", imsi, { bearer: "cellular", ipv4: address }, 0));
    for (const [n, each] of facts.entries()) each.occurredAt = new Date(start + n * 5_000).toISOString();
    return facts;
  }

  /** The lease items of `address` (its holders' session edges), once the history reader has caught up. */
  async function leasesOf(tenantId: string, address: string) {
    await runtime.history.caughtUp();
    const { Items } = await runtime.ports.db.send(
      new QueryCommand({
        TableName: runtime.ports.tables.identity,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": leasePartition(tenantId, address) },
      }),
    );
    return Items ?? [];
  }

  /** The flapping history whole: its 111 lease edges, 56 attaches and 55 detaches on the timeline, none recorded late, the last attach holding. */
  async function expectWholeHistory(tenant: Awaited<ReturnType<typeof tenantClient>>, deviceId: string, address: string) {
    expect(await leasesOf(tenant.tenant.id, address)).toHaveLength(111);
    const timeline = (await tenant.call("GET", `/v1/devices/${deviceId}/timeline?limit=200`)).json.items as { type: string }[];
    const count = (type: string) => timeline.filter((entry) => entry.type === type).length;
    expect([count("sim.attached"), count("sim.detached"), count("sim.session-recorded")]).toEqual([56, 55, 0]);
    expect((await tenant.call("GET", `/v1/devices/${deviceId}`)).json.identity.sessions.cellular?.ipv4).toBe(address);
  }

  it("applies every one of 111 facts of one device in one webhook, in their order: every session and lease recorded", async () => {
    // A core reports a busy device's last ten minutes at once: it detached and attached again every 5 s on one address.
    // The request's facts travelled in several bus entries, applied side by side: most arrived after 32 newer ones,
    // fell before the device's window and were dropped (71 to 90 of 111 lease edges; 7 attaches on the timeline).
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const imsi = "208013330000001";
    const device = (await tenant.call("POST", "/v1/devices", { imsi })).json;
    const address = "10.46.3.1";
    await report(...flapping(imsi, address));
    await expectWholeHistory(tenant, device.id, address);
  }, 120_000);

  it("applies them in their order though the request names the device two ways (by IMSI, and by IMSI and MSISDN) (review 141)", async () => {
    // The facts were grouped by the device's reference as written: a core naming the device by IMSI in its attaches and
    // by IMSI and MSISDN in its detaches had them packed as two devices, in entries applied side by side, out of order.
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const imsi = "208013330000002";
    const msisdn = "+33612340002";
    await tenant.call("POST", "/v1/devices", { imsi, msisdn });
    const address = "10.46.3.2";
    await report(...flapping(imsi, address, { imsi, msisdn }));
    expect(await leasesOf(tenant.tenant.id, address)).toHaveLength(111);
  }, 120_000);

  it("applies them in time order though the request lists them newest first (review 138)", async () => {
    // Applied in the order listed, every fact came after the 32 later ones listed before it: it fell before the
    // device's window and was dropped as stale, though the whole history came in one request.
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const imsi = "208013330000003";
    const device = (await tenant.call("POST", "/v1/devices", { imsi })).json;
    const address = "10.46.3.3";
    await report(...flapping(imsi, address).reverse());
    await expectWholeHistory(tenant, device.id, address);
  }, 120_000);

  it("applies every fact of a device's history though the store throttles its first for 10 s (review 145)", async () => {
    // A change the store throttles fails after 8 s (review 144): the first fact failed, went back on the bus alone, and
    // the device's 110 later facts of the entry were applied before it came back, 32 behind: dropped as stale.
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const imsi = "208013330000005";
    await tenant.call("POST", "/v1/devices", { imsi });
    const address = "10.46.3.5";
    // The store throttles every transaction naming the device for 10 s from its first (after the SDK's own retries).
    const name = "throttle-history";
    let since: number | undefined;
    runtime.ports.db.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { TransactItems?: unknown };
        if (!input.TransactItems || !JSON.stringify(input).includes(imsi)) return next(args);
        since ??= Date.now();
        if (Date.now() - since > 10_000) return next(args);
        throw Object.assign(new Error("Rate of requests exceeds the allowed throughput"), {
          name: "ThrottlingException",
          $metadata: { httpStatusCode: 400 },
        });
      },
      { step: "initialize", name },
    );
    try {
      await report(...flapping(imsi, address));
    } finally {
      runtime.ports.db.middlewareStack.remove(name);
    }
    expect(since).toBeDefined();
    expect(await leasesOf(tenant.tenant.id, address)).toHaveLength(111);
  }, 120_000);

  it("applies in time order the 301 facts parked for a device named two ways (by IMSI, by ICCID) when it registers (review 138)", async () => {
    // Its attaches named by IMSI, its detaches by ICCID: two devices to ingestion, each within its bound of 250 facts.
    // Replayed by its registration, they travelled as two entries applied side by side, the later facts first, and the
    // earlier ones, more than 32 behind, were dropped as stale (91 of 301 lease edges).
    const tenant = await tenantClient(runtime);
    const report = await simrootSource(runtime, tenant);
    const imsi = "208013330000004";
    const iccid = "8944500102198304004";
    const address = "10.46.3.4";
    await report(...flapping(imsi, address, { iccid }, 150));
    const parked = () => parkedNaming(runtime.ports, tenant.tenant.id, [`imsi:${imsi}`, `iccid:${iccid}`]);
    expect(await parked()).toHaveLength(301);
    const device = (await tenant.call("POST", "/v1/devices", { imsi, iccids: [iccid] })).json;
    await runtime.settled();
    expect(await leasesOf(tenant.tenant.id, address)).toHaveLength(301);
    expect(await parked()).toEqual([]);
    const timeline = (await tenant.call("GET", `/v1/devices/${device.id}/timeline?limit=500`)).json.items as { type: string }[];
    const count = (type: string) => timeline.filter((entry) => entry.type === type).length;
    expect([count("sim.attached"), count("sim.detached"), count("sim.session-recorded")]).toEqual([151, 150, 0]);
    expect((await tenant.call("GET", `/v1/devices/${device.id}`)).json.identity.sessions.cellular?.ipv4).toBe(address);
  }, 300_000);
});

async function deviceItemOfDevice(tenantId: string, deviceId: string) {
  return (
    await runtime.ports.db.send(
      new GetCommand({ TableName: runtime.ports.tables.identity, Key: deviceKey(tenantId, deviceId), ConsistentRead: true }),
    )
  ).Item!;
}
