import { eventOfRecord, listAudit, type DomainEvent } from "@simroot/core";
import type { TestRuntime } from "./runtime.ts";

/**
 * The events a tenant's committed changes published, rebuilt from its audit records (each
 * record is one event): what a consumer receives; with `seen`, only the events not in it (which
 * are added to it).
 */
export async function committedEvents(runtime: TestRuntime, tenantId: string, seen?: Set<string>): Promise<DomainEvent[]> {
  const ctx = { tenantId, actor: "system:test", requestId: "req_test" };
  const records = [];
  let cursor: string | undefined;
  do {
    const page = await listAudit(runtime.ports, ctx, { limit: 1000, cursor });
    records.push(...page.items);
    cursor = page.next;
  } while (cursor);
  // Listed shard by shard: in time order here (records of one instant keep their shard order).
  const fresh = seen ? records.filter((record) => !seen.has(record.eventId)) : records;
  for (const record of fresh) seen?.add(record.eventId);
  return fresh.sort((a, b) => a.time.localeCompare(b.time)).map(eventOfRecord);
}
