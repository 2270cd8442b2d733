/**
 * Devices whose ids hash to different ledger shards, and a reporter of their operator facts: an IP address moving
 * between two such devices is the one key written from two shards (core ledger/cut.ts).
 */
import { expect } from "vitest";
import { applyOperatorEvent, ingestedEvent, registerDevice, shardOfSubject, type Ports } from "@simroot/core";

const ctxFor = (tenantId: string) => ({ tenantId, actor: "system:test", requestId: "req_test" });
const imsi = (n: number) => `23410${String(n).padStart(10, "0")}`;

/**
 * Registers 6 devices (SIMs `first` to `first + 5`): the first is the giver, the first whose id hashes to another
 * shard the taker. `report` applies a fact about a device, a second after the last one, through `reportVia` (or `via`),
 * and expects it applied.
 */
export async function twoShards(ports: Ports, tenantId: string, first: number, reportVia: Ports = ports) {
  const ctx = ctxFor(tenantId);
  const registered = [];
  for (let n = 0; n < 6; n++) registered.push((await registerDevice(ports, ctx, { imsi: imsi(first + n) })).value);
  const giver = registered[0]!;
  const taker = registered.find((device) => shardOfSubject(device.id) !== shardOfSubject(giver.id))!;
  let second = 0;
  const report = async (
    device: { imsi?: string },
    type: string,
    data: Record<string, unknown> = { bearer: "cellular" },
    via: Ports = reportVia,
  ) => {
    const normalized = {
      type,
      dedupeKey: `${type}-${second}`,
      occurredAt: new Date(Date.UTC(2026, 11, 3, 8, 0, second++)).toISOString(),
      device: { imsi: device.imsi },
      sourceType: "test",
      data,
    };
    const event = ingestedEvent({ ...ctx, actor: "source:src_test" }, "src_test", "simroot", normalized as never, new Date());
    expect((await applyOperatorEvent(via, event)).value.outcome).toBe("applied");
  };
  return { registered, giver, taker, report };
}
