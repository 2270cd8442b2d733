/**
 * Flow records enforcement points report: per window, aggregated per device, destination,
 * port, protocol and decision, with counts and bytes. Kept 30 days for the anomaly
 * detection to come.
 */
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { ipv6Schema } from "../catalogue/catalogue.ts";
import { deviceKey } from "../device/keys.ts";
import { SimrootError } from "../error.ts";
import { defaultMaxClockSkewSeconds } from "../ingest/clock.ts";
import { idFromSeed } from "../id.ts";
import { canonicalJson } from "../ledger/chain.ts";
import type { Ports } from "../ports.ts";
import { batchGetAll } from "../store/batch-get.ts";
import { Lru } from "../store/lru.ts";
import { parseInput } from "../verb.ts";
import type { RequestContext } from "../context.ts";
import { devicesInScope, type FeedScope } from "./scope.ts";

export const flowRetentionSeconds = 30 * 24 * 60 * 60;

export const flowRecordSchema = z.strictObject({
  deviceId: z.string().max(64).optional(),
  /** The device's address, or `unknown` (a PEP that could not read the source). */
  sourceIp: z.union([z.ipv4(), ipv6Schema, z.literal("unknown")]).optional(),
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
  // The instants, not the text: offsets and fractions of a second sort otherwise (review 127).
  .refine((report) => Date.parse(report.windowStart) <= Date.parse(report.windowEnd), {
    message: "windowStart is after windowEnd",
    path: ["windowEnd"],
  })
  // A window's volume is judged and recorded as a number the store keeps exactly (review 132: two flows of 5 PB each,
  // valid one by one, were stored, then their sum refused by the store's marshalling: a 500 the PEP retried for ever).
  .refine((report) => report.flows.reduce((sum, flow) => sum + flow.bytes, 0) <= Number.MAX_SAFE_INTEGER, {
    message: `the flows' bytes add up to more than ${Number.MAX_SAFE_INTEGER}`,
    path: ["flows"],
  })
  .meta({ id: "FlowReport" });

/**
 * Devices this instance found the tenant has (`tenant|device`). A device is never deleted (a revoked one stays, in its
 * state), so a device found once is known for good: the cache has no staleness, only a bound. A PEP reports the same
 * devices window after window, so a warm instance reads only those it has not seen.
 */
const knownDevices = new Lru<string, true>(100_000);
/** Devices this instance did not find, until when (epoch ms): a report naming made-up ids is not read again for a while. */
const notFound = new Lru<string, number>(100_000);
const unknownForMs = 60_000;

/** The ids among `deviceIds` of devices the tenant has (read by key, consistently: a PEP reports devices it learned from the feed). */
async function tenantDevices(ports: Ports, tenantId: string, deviceIds: ReadonlySet<string>): Promise<Set<string>> {
  const known = new Set([...deviceIds].filter((id) => knownDevices.get(`${tenantId}|${id}`)));
  const now = Date.now();
  const unread = [...deviceIds].filter((id) => !known.has(id) && !((notFound.get(`${tenantId}|${id}`) ?? 0) > now));
  if (unread.length === 0) return known;
  const items = await batchGetAll(
    ports,
    ports.tables.identity,
    unread.map((id) => deviceKey(tenantId, id)),
  );
  for (const item of items) {
    known.add(String(item.id));
    knownDevices.set(`${tenantId}|${String(item.id)}`, true);
  }
  for (const id of unread) if (!known.has(id)) notFound.set(`${tenantId}|${id}`, now + unknownForMs);
  return known;
}

/**
 * Stores a report's flows. A flow naming a device the tenant does not have (another tenant's, deleted, or made up) is
 * not kept: it would show in the tenant's traffic map and teach a baseline for nothing. Such ids are answered back
 * (`unknownDevices`), the rest of the report kept. `report` is what was stored, for the detectors.
 *
 * A report from a pep key bound to a selector (`scope`) holds to it: a device out of the scope is answered and left
 * out exactly as one the tenant does not have (the answer tells the two apart in nothing, so the key cannot test
 * whether an id exists elsewhere in the tenant), and nothing of it is kept. Its devices' labels are read on every
 * report (a device may have been relabelled out of the scope), not taken from the cache of known devices.
 */
export async function recordFlows(
  ports: Ports,
  ctx: RequestContext,
  given: z.input<typeof flowReportSchema>,
  scope?: FeedScope,
): Promise<{ id: string; flows: number; unknownDevices: string[]; report: z.output<typeof flowReportSchema> }> {
  const parsed = parseInput(flowReportSchema, given);
  // Kept in UTC, as every bound they are read by is (review 125: a window stated with another offset was stored as
  // written, under the wrong day and sort key, and the OCSF export and the traffic map left it out of its window).
  const utc = (instant: string) => new Date(instant).toISOString();
  const input = { ...parsed, windowStart: utc(parsed.windowStart), windowEnd: utc(parsed.windowEnd) };
  // A window that ends in the future, past the clock skew ingestion allows, is no report of what happened.
  if (Date.parse(input.windowEnd) > ports.now().getTime() + defaultMaxClockSkewSeconds * 1000)
    throw new SimrootError("request.invalid", "input", "windowEnd is in the future", {
      issues: [{ path: "windowEnd", message: `more than ${defaultMaxClockSkewSeconds} s after the control plane's clock` }],
    });
  const named = new Set(input.flows.flatMap((flow) => (flow.deviceId === undefined ? [] : [flow.deviceId])));
  const known = scope ? await devicesInScope(ports, ctx.tenantId, scope, named) : await tenantDevices(ports, ctx.tenantId, named);
  const unknownDevices = [...named].filter((id) => !known.has(id)).sort();
  const report = { ...input, flows: input.flows.filter((flow) => flow.deviceId === undefined || known.has(flow.deviceId)) };
  // The same report sent again (its answer lost: the PEP keeps it until one comes) is the same record, stored once, and
  // its anomalies recorded once (review 132: each resend was stored again and raised its anomalies again).
  const id = idFromSeed("event", Date.parse(input.windowEnd), `${ctx.tenantId}|${ctx.actor}|${canonicalJson(input)}`);
  const day = input.windowEnd.slice(0, 10);
  if (report.flows.length > 0 || input.flows.length === 0) {
    await ports.db.send(
      new PutCommand({
        TableName: ports.tables.flows,
        Item: {
          pk: `T#${ctx.tenantId}#${day}`,
          sk: `${input.windowEnd}#${input.pepId}#${id}`,
          tenantId: ctx.tenantId,
          ...report,
          reportedBy: ctx.actor,
          expiresAt: Math.floor(ports.now().getTime() / 1000) + flowRetentionSeconds,
        },
      }),
    );
  }
  return { id, flows: report.flows.length, unknownDevices, report };
}
