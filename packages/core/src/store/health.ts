import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type { Ports } from "../ports.ts";

/** How long `/health` waits for the store before reporting it down (one attempt, no retries). */
export const storeProbeTimeoutMs = 2_000;

/** A store probe that needs only read access: one consistent GetItem of a key that never exists. */
export async function storeHealth(ports: Ports) {
  const started = performance.now();
  await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: { pk: "health", sk: "probe" }, ConsistentRead: true }), {
    abortSignal: AbortSignal.timeout(storeProbeTimeoutMs),
  });
  return { status: "ok" as const, detail: { latencyMs: Math.round(performance.now() - started) } };
}
