/**
 * `npm run cost -- --measure`: what one applied operator event costs in AWS units, measured on
 * the local runtime (the same handlers and store calls Lambda runs): DynamoDB write and read
 * units (ReturnConsumedCapacity on every call, as DynamoDB Local reports them, its transactions counted item by
 * item: test/support/billed-units.ts), bus events
 * published, consumer invocations (the events a rule matches) and API requests. The figures
 * go into bench/cost/inputs.ts by hand (so a change to them is reviewed).
 *
 *   EVENTS=400 DEVICES=100 BATCH=10 FROM=0
 *
 * FROM counts from that fact on (a multiple of BATCH): with EVENTS=5000 DEVICES=100 FROM=4000 every
 * device item carries a full window of 32 facts, as a fleet's do in steady state.
 */
import { randomUUID } from "node:crypto";
import {
  busSourceOf,
  createSource,
  createTenantWithAdminKey,
  deployedPattern,
  isQueued,
  integrationTenants,
  registerDevice,
  packReported,
  rules,
  type DomainEvent,
  type PublishOptions,
  type RuleName,
} from "@simroot/core";
import { matchesPattern } from "@simroot/core";
import { startDynamoLocal } from "@simroot/local/dynamodb-local";
import { startLocalRuntime } from "@simroot/local/runtime";
import { billedTransaction } from "../../test/support/billed-units.ts";
import { signedHeaders } from "../ingest/sign.ts";

const events = Number(process.env.EVENTS ?? 400);
const devices = Number(process.env.DEVICES ?? 100);
const batch = Number(process.env.BATCH ?? 10);
const from = Number(process.env.FROM ?? 0);
if (from % batch !== 0 || from >= events) throw new Error(`FROM (${from}) must be a multiple of BATCH (${batch}) below EVENTS (${events})`);

interface ConsumedEntry {
  readonly TableName?: string;
  readonly CapacityUnits?: number;
  readonly Table?: { readonly CapacityUnits?: number };
  readonly GlobalSecondaryIndexes?: Record<string, { readonly CapacityUnits?: number }>;
}

export async function measure() {
  // A JVM start on a busy machine can take longer than the launcher's default 30 s.
  const dynamo = process.env.DYNAMODB_ENDPOINT ? undefined : await startDynamoLocal({ startTimeoutMs: 180_000 });
  const runtime = await startLocalRuntime({ port: 0, dynamoEndpoint: process.env.DYNAMODB_ENDPOINT ?? dynamo!.endpoint });
  const ports = runtime.ports;
  const { tenant } = await createTenantWithAdminKey(ports, "cost");
  const ctx = { tenantId: tenant.id, actor: "system:cost", requestId: "req_cost" };
  const { source, credentials } = await createSource(ports, ctx, { name: "cost", format: "simroot" });
  const imsiOf = (n: number) => `20801${String(n).padStart(10, "0")}`;
  for (let n = 0; n < devices; n++) await registerDevice(ports, ctx, { imsi: imsiOf(n) });
  await runtime.settled();

  const totals = { writeUnits: 0, readUnits: 0, busEvents: 0, consumerInvocations: 0, queueMessages: 0, apiRequests: 0 };
  const byCommand: Record<string, { calls: number; units: number }> = {};
  const byTable: Record<string, number> = {};
  /** Write units as DynamoDB Local reported them, transactions too (the figures before 2026-12-04's meter). */
  let writeUnitsAsReported = 0;
  /** Transactions whose units may still be counted short (test/support/billed-units.ts); real DynamoDB reports them right. */
  let ambiguousTransactions = 0;
  const endpoint = new URL(process.env.DYNAMODB_ENDPOINT ?? dynamo!.endpoint);
  const againstLocal = ["localhost", "127.0.0.1", "[::1]"].includes(endpoint.hostname);
  ports.db.middlewareStack.add(
    (next, context) => async (args) => {
      // INDEXES, as bench:write asks: the units of the table and of each index, beside the total.
      (args.input as { ReturnConsumedCapacity?: string }).ReturnConsumedCapacity = "INDEXES";
      const result = await next(args);
      const consumed = (result.output as { ConsumedCapacity?: unknown }).ConsumedCapacity;
      const command = String(context.commandName);
      const reported = (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []) as ConsumedEntry[];
      // DynamoDB Local under-reports a transaction of several items of a table: counted item by item.
      const billed = command === "TransactWriteItemsCommand" && againstLocal ? billedTransaction(args.input as never, reported) : undefined;
      if (billed?.ambiguous) ambiguousTransactions += 1;
      const entries = billed?.entries ?? reported;
      const units = entries.reduce((sum, each) => sum + (each.CapacityUnits ?? 0), 0);
      // Per table and operation (and index), by the table's key in tableNames (the name's last part).
      for (const each of entries) {
        const where = `${String(each.TableName).split("-").at(-1)}/${command.replace(/Command$/, "")}`;
        byTable[where] = (byTable[where] ?? 0) + (each.Table?.CapacityUnits ?? 0);
        for (const [index, { CapacityUnits = 0 }] of Object.entries(each.GlobalSecondaryIndexes ?? {}))
          byTable[`${where}/${index}`] = (byTable[`${where}/${index}`] ?? 0) + CapacityUnits;
      }
      const entry = (byCommand[command] ??= { calls: 0, units: 0 });
      entry.calls++;
      entry.units += units;
      if (/^(Get|BatchGet|Query|Scan|TransactGet)/.test(command)) totals.readUnits += units;
      else {
        totals.writeUnits += units;
        writeUnitsAsReported += reported.reduce((sum, each) => sum + (each.CapacityUnits ?? 0), 0);
      }
      return result;
    },
    { step: "initialize", name: "costMeter" },
  );
  const publish = runtime.bus.publish.bind(runtime.bus);
  runtime.bus.publish = async (published: readonly DomainEvent[], options?: PublishOptions) => {
    // Counted as the bus takes them: a request's facts packed in one entry (core ingest/reported.ts).
    const entries = packReported(published);
    totals.busEvents += entries.length;
    for (const event of entries) {
      const envelope = {
        source: busSourceOf(event),
        "detail-type": event.type,
        resources: options?.resources?.(event) ?? [],
        detail: event,
      };
      const matched = (Object.keys(rules) as RuleName[]).filter((name) =>
        matchesPattern(deployedPattern(name, integrationTenants()), envelope as never),
      );
      totals.consumerInvocations += matched.length;
      totals.queueMessages += matched.filter(isQueued).length;
    }
    return publish(published, options);
  };
  // Facts after the registrations (an older fact than the device's state is ignored as stale).
  const epoch = Date.now() + 1000;
  let counted = events;
  for (let start = 0; start < events; start += batch) {
    if (start === from && from > 0) {
      // What the facts before FROM cost is not counted: the window fills first.
      await runtime.settled();
      for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] = 0;
      writeUnitsAsReported = 0;
      ambiguousTransactions = 0;
      for (const key of Object.keys(byCommand)) delete byCommand[key];
      for (const key of Object.keys(byTable)) delete byTable[key];
      counted = events - from;
    }
    const body = JSON.stringify(
      Array.from({ length: Math.min(batch, events - start) }, (_, k) => {
        const n = start + k;
        const round = Math.floor(n / devices);
        return {
          type: round % 2 === 0 ? "sim.attached" : "sim.detached",
          dedupeKey: randomUUID(),
          occurredAt: new Date(epoch + round * 1000).toISOString(),
          device: { imsi: imsiOf(n % devices) },
          sourceType: "cost",
          data: round % 2 === 0 ? { bearer: "cellular", ipv4: `10.0.${n % devices}.${1 + (round % 200)}` } : {},
        };
      }),
    );
    const response = await fetch(`${runtime.url}${source.ingestPath}`, {
      method: "POST",
      headers: signedHeaders(credentials.webhookSecret!, body),
      body,
    });
    if (response.status !== 202) throw new Error(`ingest answered ${response.status}`);
    totals.apiRequests++;
  }
  await runtime.settled();
  const deadLetters = runtime.bus.deadLetters();
  if (deadLetters.length > 0) throw new Error(`${deadLetters.length} events dead-lettered: ${deadLetters[0]!.reason}`);
  await runtime.stop();
  await dynamo?.stop();
  const per = (value: number) => Math.round((value / counted) * 100) / 100;
  return {
    events: counted,
    byCommand: Object.fromEntries(
      Object.entries(byCommand).map(([command, { calls, units }]) => [command, { calls: per(calls), units: per(units) }]),
    ),
    byTable: Object.fromEntries(Object.entries(byTable).map(([where, units]) => [where, per(units)])),
    /** Write units per applied event as DynamoDB Local reports them (its transactions count each distinct unit count once). */
    writeUnitsAsReported: per(writeUnitsAsReported),
    ambiguousTransactions,
    perAppliedEvent: {
      writeUnits: per(totals.writeUnits),
      readUnits: per(totals.readUnits),
      busEvents: per(totals.busEvents),
      consumerInvocations: per(totals.consumerInvocations),
      queueMessages: per(totals.queueMessages),
      apiRequests: per(totals.apiRequests),
    },
  };
}

if (import.meta.main) console.log(JSON.stringify(await measure(), null, 2));
