/**
 * The feed's backstop. An instance that commits a change sequences it right after (ledger.ts `requestSequence`), and
 * retries while its commit waits. In Lambda that instance can stop before the feed carries the change: killed at its
 * timeout, frozen once it has answered (its retries then wait for its next invocation, which may never come), or
 * refused by the store for longer than its commit waits. The record is then committed, in the audit trail, and in no
 * feed version until the tenant's next change: for an idle tenant, a revocation that never reaches a PEP. Likewise a
 * version left written past the head (its run stopped before moving the head) waits for the next run.
 *
 * The history (the audit stream's second reader) sees every committed record. For each tenant of a batch it reads the
 * feed head; records the head does not cover yet are given until they are `graceMs` old (their committer is most
 * likely sequencing them), then the history sequences the tenant itself: the same run any instance makes, so it
 * adopts a version left past the head, races harmlessly with a late committer, and announces what it moved.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { eventsOfStream, type OutboxStreamRecord } from "../outbox/outbox.ts";
import type { Ports } from "../ports.ts";
import type { AuditRecord } from "./audit-record.ts";
import { readFeedHead } from "./sequencer.ts";
import { shardCount } from "./shard.ts";

export interface CatchUpOptions {
  /** How old an uncovered record must be before the reader sequences its tenant (its committer's time to do it). */
  readonly graceMs?: number;
  /** How often the head is read again while the newest uncovered record is younger than that. */
  readonly pollMs?: number;
}

export const catchUpGraceMs = 2_000;

/** Sequences the tenants whose records in `records` the feed head still does not cover after the grace; returns them. */
export async function catchUpFeed(
  records: readonly Pick<AuditRecord, "tenantId" | "shard" | "seq" | "time">[],
  ports: Pick<Ports, "db" | "tables" | "ledger">,
  options: CatchUpOptions = {},
): Promise<string[]> {
  const graceMs = options.graceMs ?? catchUpGraceMs;
  const pollMs = options.pollMs ?? 50;
  // Per tenant, per shard: the last sequence the batch holds, and when the newest record was written.
  const tenants = new Map<string, { last: Map<number, number>; newest: number }>();
  for (const record of records) {
    const tenant = tenants.get(record.tenantId) ?? { last: new Map<number, number>(), newest: 0 };
    tenant.last.set(record.shard, Math.max(tenant.last.get(record.shard) ?? 0, record.seq));
    tenant.newest = Math.max(tenant.newest, Date.parse(record.time) || 0);
    tenants.set(record.tenantId, tenant);
  }
  const sequenced: string[] = [];
  await Promise.all(
    [...tenants].map(async ([tenantId, { last, newest }]) => {
      for (;;) {
        const head = await readFeedHead(ports.db, ports.tables, tenantId, shardCount);
        if ([...last].every(([shard, seq]) => (head.vector[shard] ?? 0) >= seq)) return;
        const wait = newest + graceMs - Date.now();
        if (wait <= 0) break;
        await sleep(Math.min(pollMs, wait));
      }
      await ports.ledger.sequence(tenantId);
      sequenced.push(tenantId);
    }),
  );
  return sequenced;
}

/** `catchUpFeed` for the new audit records of a stream batch; a failure is logged, never the batch's (its history is written). */
export async function catchUpFromStream(
  records: readonly OutboxStreamRecord[],
  ports: Pick<Ports, "db" | "tables" | "ledger">,
  options?: CatchUpOptions,
): Promise<string[]> {
  try {
    return await catchUpFeed(
      eventsOfStream(records).map(({ record }) => record),
      ports,
      options,
    );
  } catch (error) {
    console.error(
      JSON.stringify({ level: "warn", component: "feed-catch-up", message: "checking the feed head failed", error: String(error) }),
    );
    return [];
  }
}
