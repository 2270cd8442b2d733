/**
 * Flow records enforcement points report: per window, aggregated per device, destination,
 * port, protocol and decision, with counts and bytes. Kept 30 days for the anomaly
 * detection to come.
 */
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { newId } from "../id.ts";
import { verb } from "../verb.ts";

export const flowRetentionSeconds = 30 * 24 * 60 * 60;

export const flowRecordSchema = z.strictObject({
  deviceId: z.string().max(64).optional(),
  sourceIp: z.string().max(64).optional(),
  destination: z.string().max(253),
  port: z.number().int().min(0).max(65535),
  protocol: z.enum(["tcp", "udp"]),
  decision: z.enum(["allow", "deny"]),
  reason: z.string().max(64),
  count: z.number().int().positive(),
  bytes: z.number().int().nonnegative(),
});
export type FlowRecord = z.output<typeof flowRecordSchema>;

export const flowReportSchema = z
  .strictObject({
    pepId: z.string().min(1).max(128),
    windowStart: z.iso.datetime({ offset: true }),
    windowEnd: z.iso.datetime({ offset: true }),
    flows: z.array(flowRecordSchema).max(1000),
  })
  .refine((report) => report.windowStart <= report.windowEnd, { message: "windowStart is after windowEnd", path: ["windowEnd"] })
  .meta({ id: "FlowReport" });

export const recordFlows = verb(flowReportSchema, async (ports, ctx, input) => {
  const id = newId("event");
  const day = input.windowEnd.slice(0, 10);
  await ports.db.send(
    new PutCommand({
      TableName: ports.tables.flows,
      Item: {
        pk: `T#${ctx.tenantId}#${day}`,
        sk: `${input.windowEnd}#${input.pepId}#${id}`,
        tenantId: ctx.tenantId,
        ...input,
        reportedBy: ctx.actor,
        expiresAt: Math.floor(ports.now().getTime() / 1000) + flowRetentionSeconds,
      },
    }),
  );
  return { id, flows: input.flows.length };
});
