/**
 * What detection costs per flow report: CPU time of the control plane's process and DynamoDB
 * write units (estimated from the items written: 1 WCU per KiB, twice inside transactions),
 * with detection, beside storing the report alone (what `POST /v1/flows` did before).
 */
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { detectFlowAnomalies, recordFlows, type Ports, type RequestContext } from "@simroot/core";
import { warmBaselines } from "./warm.ts";

const kib = (item: unknown) => Math.max(1, Math.ceil(Buffer.byteLength(JSON.stringify(item ?? {})) / 1024));

/** What is read of the inputs of the commands counted: the items they write. */
interface WriteInput {
  readonly Item?: unknown;
  readonly TransactItems?: readonly { readonly Put?: { readonly Item?: unknown }; readonly Update?: unknown; readonly Delete?: unknown }[];
}

function counting(ports: Ports) {
  const counted = { wcu: 0 };
  const db = {
    send: (command: { input: WriteInput; constructor: { name: string } }) => {
      const input = command.input;
      switch (command.constructor.name) {
        case "PutCommand":
          counted.wcu += kib(input.Item);
          break;
        case "UpdateCommand":
        case "DeleteCommand":
          counted.wcu += 1;
          break;
        case "TransactWriteCommand":
          for (const item of input.TransactItems!) counted.wcu += 2 * kib(item.Put?.Item ?? item.Update ?? item.Delete);
          break;
      }
      return ports.db.send(command as never);
    },
  } as unknown as DynamoDBDocumentClient;
  return { ports: { ...ports, db } as Ports, counted };
}

export async function measureCost(base: Ports, tenantId: string, deviceIds: readonly string[], perReport: number, reports: number) {
  const ctx: RequestContext = { tenantId, actor: "key:bench", requestId: "req_bench" };
  await warmBaselines(base, tenantId, deviceIds);
  // One enforcement point reporting the same devices every 5 minutes (windows ahead of the warm baselines).
  const start = Date.now() + 60_000;
  let reportIndex = 0;
  const report = (index: number) => {
    const end = new Date(start + (reportIndex++ + index * 0) * 5 * 60_000);
    return {
      pepId: "bench-pep",
      windowStart: new Date(end.getTime() - 300_000).toISOString(),
      windowEnd: end.toISOString(),
      flows: Array.from({ length: perReport }, (_, n) => ({
        deviceId: deviceIds[n % deviceIds.length]!,
        destination: "telemetry.example.com",
        port: 443,
        protocol: "tcp" as const,
        decision: "allow" as const,
        reason: "allow.rule",
        count: 3,
        bytes: 19_000 + ((index + n) % 7) * 300,
      })),
    };
  };
  const run = async (detect: boolean) => {
    const { ports, counted } = counting(base);
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let index = 0; index < reports; index++) {
      const input = report(index);
      await recordFlows(ports, ctx, input);
      if (detect) await detectFlowAnomalies(ports, ctx, input);
    }
    const used = process.cpuUsage(cpu);
    return {
      cpuMsPerReport: (used.user + used.system) / 1000 / reports,
      wallMsPerReport: (performance.now() - started) / reports,
      wcuPerReport: counted.wcu / reports,
      wcuPerDeviceWindow: counted.wcu / (reports * perReport),
    };
  };
  await run(true); // warm-up (JIT, connections)
  return { withDetection: await run(true), storeOnly: await run(false) };
}
