/**
 * A subject's audit listing merges two places: the listing items the history reader writes (records since
 * 2026-12-03) and the byDevice index entries of records written before. Whatever the mix, and with records of one
 * subject on several shards at the same time and sequence, every record is listed exactly once and in order, at
 * every page size and time bound.
 */
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditPartition, auditSortKey, auditSubjectPartition, listAudit } from "@simroot/core";
import { startTestRuntime, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime();
});
afterAll(() => runtime.stop());

function rng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

describe("a subject's audit listing over listing items and the former index", () => {
  it("lists every record once, in order, at every page size and bound", async () => {
    const failures: string[] = [];
    for (let round = 0; round < 3; round++) {
      const random = rng(round + 1);
      const tenantId = `ten_subject_merge_${round}`;
      const times = ["2026-11-01T00:00:00.000Z", "2026-11-01T00:00:01.000Z", "2026-11-01T00:00:02.000Z"];
      const used = new Set<string>();
      const records: { shard: number; seq: number; time: string }[] = [];
      for (let n = 0; n < 30; n++) {
        const shard = [0, 3, 7, 12][Math.floor(random() * 4)]!;
        const seq = 1 + Math.floor(random() * 6);
        if (used.has(`${shard}|${seq}`)) continue;
        used.add(`${shard}|${seq}`);
        const time = times[Math.floor(random() * times.length)]!;
        const indexed = random() < 0.5;
        records.push({ shard, seq, time });
        await runtime.ports.db.send(
          new PutCommand({
            TableName: runtime.ports.tables.audit,
            Item: {
              ...{ pk: auditPartition(tenantId, shard), sk: auditSortKey(seq), seq, shard, tenantId, time, action: "device.suspended" },
              ...{ actor: "system:test", requestId: "req", subject: "dev_x", eventId: `evt_${shard}_${seq}`, data: {} },
              ...{ prevHash: "0".repeat(64), hash: "0".repeat(64) },
              ...(indexed ? { gsi1pk: auditSubjectPartition(tenantId, "dev_x"), gsi1sk: `${time}#${auditSortKey(seq)}` } : {}),
            },
          }),
        );
      }
      await runtime.settled();
      const sorted = [...records].sort((a, b) =>
        a.time !== b.time ? (a.time < b.time ? -1 : 1) : a.seq !== b.seq ? a.seq - b.seq : a.shard - b.shard,
      );
      const bounds: [string | undefined, string | undefined][] = [
        [undefined, undefined],
        [times[1], undefined],
        [undefined, times[2]],
        [times[1], times[2]],
      ];
      for (const [from, to] of bounds)
        for (const limit of [1, 2, 3, 5, 100]) {
          const expected = sorted.filter((r) => (!from || r.time >= from) && (!to || r.time < to)).map((r) => `${r.shard}:${r.seq}`);
          const listed: string[] = [];
          let cursor: string | undefined;
          let pages = 0;
          do {
            const page = await listAudit(runtime.ports, { tenantId, actor: "system:test", requestId: "req" }, {
              subject: "dev_x",
              limit,
              cursor,
              ...(from ? { from } : {}),
              ...(to ? { to } : {}),
            } as never);
            listed.push(...page.items.map((record) => `${record.shard}:${record.seq}`));
            cursor = page.next;
          } while (cursor && ++pages < 500);
          if (JSON.stringify(listed) !== JSON.stringify(expected))
            failures.push(`round ${round} from ${from} to ${to} limit ${limit}: ${listed.join(",")} != ${expected.join(",")}`);
        }
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
