/**
 * The traffic map: which segments (devices grouped by one label) reach which destinations,
 * allowed and denied, drawn from the flow reports of enforcement points. An edge whose
 * destination no device of its segment had reached before the window's last hour is marked
 * `novel`: the "meter that suddenly talks to an unfamiliar server" the console highlights.
 */
import * as z from "zod";
import type { Device } from "../device/device.ts";
import { listDevices } from "../device/read.ts";
import type { RequestContext } from "../context.ts";
import type { Ports } from "../ports.ts";
import { verb } from "../verb.ts";
import { readFlows, type ObservedFlow } from "./flows-read.ts";

/** How many flow reports one map reads at most (newest first). */
const maxReports = 2_000;
/** How many devices one map resolves labels for at most. */
const maxDevices = 20_000;
const recentMs = 60 * 60 * 1000;

export const trafficInput = z.object({
  hours: z.coerce
    .number()
    .int()
    .min(1)
    .max(7 * 24)
    .default(24)
    .meta({ description: "how far back to look" }),
  groupBy: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/)
    .default("fleet")
    .meta({ description: "the label whose values are the segments" }),
  device: z.string().min(1).max(64).optional().meta({ description: "only this device's flows" }),
});

const edgeSchema = z.object({
  segment: z.string().meta({ description: "`<label>=<value>`, or `<label>=(none)` for devices without the label" }),
  destination: z.string(),
  port: z.number().int(),
  protocol: z.enum(["tcp", "udp"]),
  allowed: z.number().int().meta({ description: "connections allowed" }),
  denied: z.number().int().meta({ description: "connections denied" }),
  bytes: z.number().int(),
  devices: z.array(z.string()).meta({ description: "the devices seen on this edge (at most 20)" }),
  lastSeen: z.string(),
  novel: z.boolean().meta({ description: "first seen for this segment within the last hour of the window" }),
});

export const trafficGraphSchema = z
  .object({
    groupBy: z.string(),
    from: z.string(),
    to: z.string(),
    segments: z.array(z.object({ segment: z.string(), devices: z.number().int() })),
    edges: z.array(edgeSchema),
    reportsRead: z.number().int(),
    truncated: z.boolean().meta({ description: "more flow reports exist in the window than one map reads" }),
  })
  .meta({ id: "TrafficGraph" });
export type TrafficGraph = z.output<typeof trafficGraphSchema>;
type Edge = z.output<typeof edgeSchema> & { firstSeen: string };

/** Every device of the tenant (bounded), by id. */
export async function devicesById(ports: Ports, ctx: RequestContext): Promise<Map<string, Device>> {
  const devices = new Map<string, Device>();
  let cursor: string | undefined;
  do {
    const page = await listDevices(ports, ctx, { limit: 100, cursor });
    for (const device of page.items) devices.set(device.id, device);
    cursor = page.next;
  } while (cursor && devices.size < maxDevices);
  return devices;
}

export const segmentOf = (device: Pick<Device, "labels"> | undefined, groupBy: string) =>
  `${groupBy}=${device?.labels[groupBy] ?? "(none)"}`;

export function buildGraph(flows: readonly ObservedFlow[], devices: ReadonlyMap<string, Device>, groupBy: string, to: Date) {
  const edges = new Map<string, Edge>();
  for (const flow of flows) {
    const segment = segmentOf(flow.deviceId ? devices.get(flow.deviceId) : undefined, groupBy);
    const key = `${segment}|${flow.destination}|${flow.port}|${flow.protocol}`;
    let edge = edges.get(key);
    if (!edge) {
      edge = {
        segment,
        destination: flow.destination,
        port: flow.port,
        protocol: flow.protocol,
        allowed: 0,
        denied: 0,
        bytes: 0,
        devices: [],
        lastSeen: flow.windowEnd,
        firstSeen: flow.windowEnd,
        novel: false,
      };
      edges.set(key, edge);
    }
    if (flow.decision === "allow") edge.allowed += flow.count;
    else edge.denied += flow.count;
    edge.bytes += flow.bytes;
    if (flow.deviceId && edge.devices.length < 20 && !edge.devices.includes(flow.deviceId)) edge.devices.push(flow.deviceId);
    if (flow.windowEnd > edge.lastSeen) edge.lastSeen = flow.windowEnd;
    if (flow.windowEnd < edge.firstSeen) edge.firstSeen = flow.windowEnd;
  }
  const recent = new Date(to.getTime() - recentMs).toISOString();
  const counts = new Map<string, number>();
  for (const device of devices.values()) counts.set(segmentOf(device, groupBy), (counts.get(segmentOf(device, groupBy)) ?? 0) + 1);
  const list = [...edges.values()].map(({ firstSeen, ...edge }) => ({ ...edge, novel: firstSeen >= recent }));
  for (const edge of list) if (!counts.has(edge.segment)) counts.set(edge.segment, 0);
  list.sort((a, b) => a.segment.localeCompare(b.segment) || b.allowed + b.denied - (a.allowed + a.denied));
  return {
    segments: [...counts].map(([segment, n]) => ({ segment, devices: n })).sort((a, b) => a.segment.localeCompare(b.segment)),
    edges: list,
  };
}

export const getTrafficGraph = verb(trafficInput, async (ports, ctx, input): Promise<TrafficGraph> => {
  const to = ports.now();
  const from = new Date(to.getTime() - input.hours * 60 * 60 * 1000);
  const [{ flows, reports }, devices] = await Promise.all([
    readFlows(ports, ctx.tenantId, from, to, maxReports + 1),
    devicesById(ports, ctx),
  ]);
  const shown = input.device === undefined ? flows : flows.filter((flow) => flow.deviceId === input.device);
  const graph = buildGraph(shown, devices, input.groupBy, to);
  return {
    groupBy: input.groupBy,
    from: from.toISOString(),
    to: to.toISOString(),
    ...graph,
    reportsRead: reports,
    truncated: reports > maxReports,
  };
});
