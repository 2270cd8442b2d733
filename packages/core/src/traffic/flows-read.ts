/**
 * Reads the flow records enforcement points reported (`feed/flows.ts` writes them per tenant
 * and day) for a time range, newest first, with a bound on how many it reads: the traffic
 * map and the policy preview look at recent traffic, never at the whole history.
 */
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import type { z } from "zod";
import type { flowReportSchema } from "../feed/flows.ts";
import type { Ports } from "../ports.ts";

/** One reported flow, as `POST /v1/flows` takes it, with the window and PEP of its report. */
export type ObservedFlow = Readonly<z.output<typeof flowReportSchema>["flows"][number]> & {
  readonly windowEnd: string;
  readonly pepId: string;
};

/** The days (UTC, YYYY-MM-DD) from `from` to `to`, newest first. */
function daysBetween(from: Date, to: Date): string[] {
  const days: string[] = [];
  const cursor = new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth(), to.getUTCDate()));
  while (cursor.getTime() >= Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate())) {
    days.push(cursor.toISOString().slice(0, 10));
    cursor.setUTCDate(cursor.getUTCDate() - 1);
  }
  return days;
}

/** Flow reports of the tenant whose window ended in [from, to], at most `maxReports` of them, newest first. */
export async function readFlows(
  ports: Ports,
  tenantId: string,
  from: Date,
  to: Date,
  maxReports: number,
): Promise<{ flows: ObservedFlow[]; reports: number }> {
  const flows: ObservedFlow[] = [];
  let reports = 0;
  for (const day of daysBetween(from, to)) {
    let start: Record<string, unknown> | undefined;
    do {
      const page = await ports.db.send(
        new QueryCommand({
          TableName: ports.tables.flows,
          KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
          ExpressionAttributeValues: { ":pk": `T#${tenantId}#${day}`, ":from": from.toISOString(), ":to": `${to.toISOString()}~` },
          ProjectionExpression: "pepId, windowEnd, flows",
          ScanIndexForward: false,
          Limit: Math.min(100, maxReports - reports),
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        reports += 1;
        for (const flow of (item.flows ?? []) as Omit<ObservedFlow, "windowEnd" | "pepId">[]) {
          flows.push({ ...flow, windowEnd: String(item.windowEnd), pepId: String(item.pepId) });
        }
      }
      start = page.LastEvaluatedKey;
    } while (start && reports < maxReports);
    if (reports >= maxReports) break;
  }
  return { flows, reports };
}
