/**
 * OCSF out of simroot: as JSON Lines from the API (the audit trail and the flow reports of a
 * window) and streamed to a SIEM's HTTPS endpoint as each event is published. The stream is
 * at least once; `metadata.uid` (the event id) lets the SIEM drop a redelivery.
 */
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import type { RequestContext } from "../../context.ts";
import { listAudit } from "../../audit/audit.ts";
import { eventOfRecord } from "../../ledger/audit-record.ts";
import type { Ports } from "../../ports.ts";
import { ocsfFromEvent, ocsfFromFlow, type FlowEntry, type OcsfEvent } from "./ocsf-map.ts";

export const ocsfExportInput = z
  .object({
    kind: z
      .enum(["audit", "flows"])
      .default("audit")
      .meta({ description: "audit records (changes, findings, incidents) or PEP flow reports" }),
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
  })
  .refine((input) => input.kind !== "flows" || (input.from && input.to), { message: "flows need from and to", path: ["from"] })
  // A reversed window answered 200 with nothing (the store refused its range partway through the stream; review 92).
  // An empty one (to = from, a poller's next window before time moved) is answered empty, as ever.
  .refine((input) => !input.from || !input.to || Date.parse(input.to) >= Date.parse(input.from), {
    message: "to is not before from",
    path: ["to"],
  })
  .refine((input) => !input.from || !input.to || Date.parse(input.to) - Date.parse(input.from) <= 31 * 86_400_000, {
    message: "a window of at most 31 days",
    path: ["to"],
  });
export type OcsfExportInput = z.output<typeof ocsfExportInput>;

/** The OCSF events of a tenant's audit trail or flow reports, a page at a time. */
export async function* ocsfExport(ports: Ports, ctx: RequestContext, input: OcsfExportInput): AsyncGenerator<OcsfEvent[]> {
  if (input.kind === "audit") {
    let cursor: string | undefined;
    do {
      const page = await listAudit(ports, ctx, { from: input.from, to: input.to, limit: 500, cursor });
      yield page.items.map((record) => ocsfFromEvent(eventOfRecord(record)));
      cursor = page.next;
    } while (cursor);
    return;
  }
  // Reports are keyed by UTC times: a bound given in another offset is the same instant in UTC (compared as text, as
  // given, it was hours off; review 92).
  const from = new Date(input.from!).toISOString();
  const to = new Date(input.to!).toISOString();
  for (let day = Date.parse(from.slice(0, 10)); day <= Date.parse(to); day += 86_400_000) {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await ports.db.send(
        new QueryCommand({
          TableName: ports.tables.flows,
          KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
          ExpressionAttributeValues: {
            ":pk": `T#${ctx.tenantId}#${new Date(day).toISOString().slice(0, 10)}`,
            ":from": from,
            ":to": `${to}~`,
          },
          ExclusiveStartKey: start,
        }),
      );
      yield (page.Items ?? []).flatMap((item) => {
        const report = {
          tenantId: ctx.tenantId,
          id: String(item.sk),
          pepId: String(item.pepId),
          windowStart: String(item.windowStart),
          windowEnd: String(item.windowEnd),
        };
        return (item.flows as FlowEntry[]).map((flow, index) => ocsfFromFlow(report, flow, index));
      });
      start = page.LastEvaluatedKey;
    } while (start);
  }
}
