/**
 * Write units per applied operator event: every write the control plane sends to the store
 * asks for ReturnConsumedCapacity INDEXES (DynamoDB Local reports it as DynamoDB would bill it,
 * GSI copies included, but for a transaction of several items of one table: test/support/billed-units.ts counts those) and the units are summed while the applier applies attach/detach facts,
 * and while the history reader of the audit stream projects the records they committed (each listed
 * under its subject, its IP lease edges as lease items: core outbox.ts).
 */
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { randomUUID } from "node:crypto";
import { billedTransaction, type ReportedCapacity } from "../../test/support/billed-units.ts";
import {
  applyOperatorEvent,
  createTenantWithAdminKey,
  ingestedEvent,
  newId,
  registerDevice,
  reprojectHistory,
  type Ports,
} from "@simroot/core";

const writeCommands = new Set([
  "PutItemCommand",
  "UpdateItemCommand",
  "DeleteItemCommand",
  "TransactWriteItemsCommand",
  "BatchWriteItemCommand",
]);

/** Adds ReturnConsumedCapacity TOTAL to every write and sums the write units it consumed. */
export function meterWrites(db: DynamoDBDocumentClient) {
  /** `ambiguous`: transactions whose units the meter may still count short (test/support/billed-units.ts). */
  const meter = { units: 0, writes: 0, ambiguous: 0, byTable: {} as Record<string, number> };
  // One meter at a time: a new one replaces the last.
  db.middlewareStack.remove("meterWrites");
  db.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? "";
      if (!writeCommands.has(name)) return next(args);
      (args.input as Record<string, unknown>).ReturnConsumedCapacity = "INDEXES";
      const result = await next(args);
      const consumed = (result.output as { ConsumedCapacity?: unknown }).ConsumedCapacity;
      const reported = (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) as ReportedCapacity[];
      // DynamoDB Local under-reports a transaction of several items of a table: counted item by item.
      const billed = name === "TransactWriteItemsCommand" ? billedTransaction(args.input as never, reported) : undefined;
      if (billed?.ambiguous) meter.ambiguous += 1;
      const list = (billed?.entries ?? reported) as {
        TableName?: string;
        CapacityUnits?: number;
        WriteCapacityUnits?: number;
      }[];
      for (const entry of list) {
        const units = entry.WriteCapacityUnits ?? entry.CapacityUnits ?? 0;
        meter.units += units;
        // Per table (its indexes' copies included), by the table's key in tableNames (the name's last part).
        const table = String(entry.TableName).split("-").at(-1)!;
        meter.byTable[table] = (meter.byTable[table] ?? 0) + units;
      }
      meter.writes += 1;
      return result;
    },
    { step: "initialize", name: "meterWrites" },
  );
  return meter;
}

const imsiOf = (n: number) => `20801${String(n).padStart(10, "0")}`;

/**
 * Applies `events` attach/detach facts over `devices` devices; returns write units per applied
 * event, counted from fact `from` on (so a device's fact window, 32 facts, can fill first: a device
 * item carries its window, and a fleet in steady state writes full ones). `together` facts (of as many devices) are
 * applied at once: one at a time every sequencing run carries one change, together they share runs.
 */
export async function unitsPerAppliedEvent(
  ports: Ports,
  devices: number,
  events: number,
  from = 0,
  together = 1,
  realistic = false,
  /** What device `n` is registered with besides its IMSI (an EID, ICCIDs, labels...): by default nothing. */
  identity: (n: number) => Record<string, unknown> = () => ({}),
) {
  if (devices % together !== 0 || from % together !== 0) throw new Error("together must divide devices and from");
  const { tenant } = await createTenantWithAdminKey(ports, "capacity");
  // `realistic`: ids as long as the API and ingestion make them (a ULID each) and attaches that carry an APN and the
  // network, as operators send them; else short ids and bare attaches (the figures of docs/write-path.md's table).
  const sourceId = realistic ? newId("source") : "src_bench";
  const ctx = { tenantId: tenant.id, actor: `source:${sourceId}`, requestId: realistic ? newId("request") : "req_bench" };
  for (let n = 0; n < devices; n++) await registerDevice(ports, ctx, { ...identity(n), imsi: imsiOf(n) } as never);
  await projectAsTheOutbox(ports, tenant.id, 0);
  const meter = meterWrites(ports.db);
  let applied = 0;
  let unitsBefore = 0;
  let writesBefore = 0;
  let ambiguousBefore = 0;
  let byTableBefore: Record<string, number> = {};
  const eventFor = (n: number) => {
    const round = Math.floor(n / devices);
    const attach = round % 2 === 0;
    const normalized = {
      type: attach ? "sim.attached" : "sim.detached",
      // As operators send them (a UUID per event): a counter would compress better than real keys do.
      dedupeKey: randomUUID(),
      occurredAt: new Date(Date.UTC(2026, 10, 22, 8, 0, round)).toISOString(),
      device: { imsi: imsiOf(n % devices) },
      sourceType: "bench",
      data: attach
        ? {
            bearer: "cellular",
            ipv4: `10.1.${n % devices}.${1 + (round % 200)}`,
            ...(realistic ? { apn: "iot.simroot.example", plmn: { mcc: "208", mnc: "01" } } : {}),
          }
        : {},
    };
    const request = realistic ? { ...ctx, requestId: newId("request") } : ctx;
    return ingestedEvent(request, sourceId, "simroot", normalized as never, new Date());
  };
  // `together` facts of as many devices at once (as a storm brings them): they share sequencing runs.
  for (let start = 0; start < events; start += together) {
    if (start === from) {
      await projectAsTheOutbox(ports, tenant.id, undefined);
      unitsBefore = meter.units;
      writesBefore = meter.writes;
      ambiguousBefore = meter.ambiguous;
      byTableBefore = { ...meter.byTable };
      applied = 0;
    }
    const wave = Array.from({ length: Math.min(together, events - start) }, (_, k) => eventFor(start + k));
    const outcomes = await Promise.all(wave.map((event) => applyOperatorEvent(ports, event)));
    applied += outcomes.filter((outcome) => outcome.value.outcome === "applied").length;
  }
  await projectAsTheOutbox(ports, tenant.id, undefined);
  const units = meter.units - unitsBefore;
  const perEventByTable = Object.fromEntries(
    Object.entries(meter.byTable).map(([table, sum]) => [table, (sum - (byTableBefore[table] ?? 0)) / Math.max(1, applied)]),
  );
  return {
    applied,
    units,
    writes: meter.writes - writesBefore,
    /** Transactions the meter may have counted short (test/support/billed-units.ts). */
    ambiguous: meter.ambiguous - ambiguousBefore,
    perEvent: units / Math.max(1, applied),
    perEventByTable,
  };
}

const projected = new Map<string, number[]>();

/**
 * What the history reader of the audit stream writes for the tenant's records committed since the last call (core
 * outbox.ts: each record listed under its subject, its IP lease edges as lease items), through its own code. `start` 0
 * starts over.
 */
async function projectAsTheOutbox(ports: Ports, tenantId: string, start: number | undefined) {
  projected.set(tenantId, await reprojectHistory(ports, tenantId, start === 0 ? [] : projected.get(tenantId)));
}

/**
 * Write units per remembered fact: one that folds into a device's window without changing what
 * anyone sees (an older reachability report than the device's newest), so it writes the device
 * item alone. Each device first gets 40 reports, so its item carries a full window.
 */
export async function unitsPerRememberedFact(ports: Ports, facts = 10) {
  const { tenant } = await createTenantWithAdminKey(ports, "remembered");
  const ctx = { tenantId: tenant.id, actor: "source:src_bench", requestId: "req_bench" };
  const imsi = imsiOf(999_999);
  await registerDevice(ports, ctx, { imsi });
  const start = Date.UTC(2026, 10, 22, 8, 0);
  const report = (at: number, reachable: boolean) =>
    ingestedEvent(
      ctx,
      "src_bench",
      "simroot",
      {
        type: "device.reachability-changed",
        dedupeKey: randomUUID(),
        occurredAt: new Date(at).toISOString(),
        device: { imsi },
        sourceType: "bench",
        data: { reachable, via: "data" },
      } as never,
      new Date(),
    );
  for (let n = 0; n < 40; n++) await applyOperatorEvent(ports, report(start + n * 60_000, n % 2 === 0));
  const meter = meterWrites(ports.db);
  let remembered = 0;
  // Between the last two reports: inside the window, older than the newest, so the state stays.
  for (let n = 0; n < facts; n++) {
    const outcome = await applyOperatorEvent(ports, report(start + 38 * 60_000 + (n + 1) * 1000, n % 2 === 0));
    if (outcome.value.outcome === "stale") remembered += 1;
  }
  return { remembered, perFact: meter.units / Math.max(1, remembered) };
}
