import { z } from "zod";
import type { RequestContext } from "../context.ts";
import type { DomainEvent } from "../event/event.ts";
import { newId } from "../id.ts";
import type { TableNames } from "../config.ts";
import type { TransactItem } from "../store/transaction.ts";

export const auditRecordSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    time: z.string(),
    action: z.string(),
    actor: z.string(),
    requestId: z.string(),
    subject: z.string(),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: "AuditRecord" });

export type AuditRecord = z.output<typeof auditRecordSchema>;

const tenantKey = (tenantId: string) => `T#${tenantId}`;
const subjectKey = (tenantId: string, subject: string) => `T#${tenantId}#S#${subject}`;

/** The audit record of an event, as an item to put in the same transaction as the change. */
export function auditPut(tables: TableNames, ctx: RequestContext, event: DomainEvent): TransactItem {
  const record: AuditRecord = {
    id: newId("audit", Date.parse(event.time)),
    tenantId: ctx.tenantId,
    time: event.time,
    action: event.type,
    actor: ctx.actor,
    requestId: ctx.requestId,
    subject: event.subject,
    data: event.data as Record<string, unknown>,
  };
  const sortKey = `${record.time}#${record.id}`;
  return {
    Put: {
      TableName: tables.audit,
      Item: {
        pk: tenantKey(ctx.tenantId),
        sk: sortKey,
        gsi1pk: subjectKey(ctx.tenantId, event.subject),
        gsi1sk: sortKey,
        ...record,
      },
      ConditionExpression: "attribute_not_exists(pk)",
    },
  };
}
