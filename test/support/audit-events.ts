import { listAudit, type DomainEvent } from "@simroot/core";
import type { TestRuntime } from "./runtime.ts";

/**
 * The events a tenant's committed changes published, rebuilt from its audit records (each
 * record is one event): what a consumer receives, in commit order, from `after` on.
 */
export async function committedEvents(runtime: TestRuntime, tenantId: string, after = 0): Promise<DomainEvent[]> {
  const ctx = { tenantId, actor: "system:test", requestId: "req_test" };
  const records = [];
  let cursor: string | undefined;
  do {
    const page = await listAudit(runtime.ports, ctx, { limit: 1000, cursor });
    records.push(...page.items);
    cursor = page.next;
  } while (cursor);
  return records
    .filter((record) => record.seq > after)
    .map((record) => ({
      id: record.eventId,
      type: record.action,
      tenantId: record.tenantId,
      subject: record.subject,
      time: record.time,
      actor: record.actor,
      requestId: record.requestId,
      data: record.data,
    }));
}
