/**
 * The detectors at work: over a flow report (called by `POST /v1/flows` once the report is
 * stored) and over one event on the bus (the `detectors` rule). Each reads the baselines it
 * needs, judges with the pure detectors, keeps the baselines and records what it found.
 */
import { tenantSettings } from "../access/tenant-settings.ts";
import type { RequestContext } from "../context.ts";
import { readDevice, recentDevice, resolveDevice, type StoredDevice } from "../device/store.ts";
import { heldByAnotherWithin, leaseHolder } from "../identity/lease.ts";
import type { DomainEvent } from "../event/event.ts";
import type { FlowRecord } from "../feed/flows.ts";
import { devicesInScope, type FeedScope } from "../feed/scope.ts";
import type { Outcome } from "../outcome.ts";
import type { Ports } from "../ports.ts";
import { emptyBaseline, rememberRecent, type SegmentBaseline } from "./baseline.ts";
import { flagSegment, learnSegment, readBaseline, readBaselines, saveBaseline } from "./baseline-store.ts";
import { judgeFact } from "./detect-facts.ts";
import { observeWindow } from "./detect-flows.ts";
import { defaultDetectorSettings, type Anomaly, type DetectorSettings } from "./model.ts";
import { recordAnomalies } from "./record.ts";

/** The device label that names its segment (devices that should behave alike). */
export const segmentLabels = ["segment", "fleet"] as const;
const maxAttempts = 4;

interface Report {
  /** The stored report's id (`recordFlows`): the same report sent again has the same, and raises its anomalies once. */
  readonly id?: string;
  readonly pepId: string;
  readonly windowStart?: string;
  readonly windowEnd: string;
  readonly flows: readonly FlowRecord[];
}

/**
 * The report's flows by device: named, or found by the source address. Under a scope (a report from a pep key bound to
 * a selector) an address found to be a device's out of the scope is no device's, as an address bound to none: the
 * key's report teaches no baseline and raises no anomaly of a device it may not see (its own devices were checked as
 * the report was stored, `recordFlows`).
 */
async function flowsByDevice(ports: Ports, tenantId: string, report: Report, scope: FeedScope | undefined) {
  const { flows } = report;
  const byDevice = new Map<string, FlowRecord[]>();
  const byIp = new Map<string, string | undefined>();
  for (const flow of flows) {
    if (!flow.deviceId && flow.sourceIp && !byIp.has(flow.sourceIp))
      byIp.set(flow.sourceIp, await holderOf(ports, tenantId, flow.sourceIp, report));
  }
  if (scope) {
    const found = [...byIp.values()].filter((id): id is string => id !== undefined);
    const held = found.length > 0 ? await devicesInScope(ports, tenantId, scope, found) : new Set<string>();
    for (const [ip, id] of byIp) if (id !== undefined && !held.has(id)) byIp.set(ip, undefined);
  }
  for (const flow of flows) {
    const deviceId = flow.deviceId || (flow.sourceIp ? byIp.get(flow.sourceIp) : undefined);
    if (!deviceId) continue;
    byDevice.set(deviceId, [...(byDevice.get(deviceId) ?? []), flow]);
  }
  return byDevice;
}

/** When the device's session on `address` began, as `device` holds it (undefined: it holds no session on it). */
const heldSince = (device: StoredDevice | undefined, address: string) =>
  Object.values(device?.device.identity.sessions ?? {}).find((session) => session?.ipv4 === address || session?.ipv6 === address)?.since;

/**
 * The device that held `address` in the report's window: its holder now, if its session on the address began by the
 * window's end; else the one the leases name at the window's end (review 132: a PEP's backlog of three hours ago, known
 * by source address, was judged on the device the address was given to since, which learned another's traffic and
 * could be quarantined for it). An address another device held at the window's start, or at any moment of it (the
 * leases over the window, whatever the device's own view says: it may be a stale copy), is no one device's.
 */
async function holderOf(ports: Ports, tenantId: string, address: string, report: Report): Promise<string | undefined> {
  const start = new Date(report.windowStart ?? report.windowEnd).toISOString();
  const end = new Date(report.windowEnd).toISOString();
  const now = await resolveDevice(ports, tenantId, { ip: address });
  const since =
    now && (heldSince(await recentDevice(ports, tenantId, now), address) ?? heldSince(await readDevice(ports, tenantId, now), address));
  const holder = since !== undefined && Date.parse(since) <= Date.parse(end) ? now : await leaseHolder(ports, tenantId, address, end);
  if (holder === undefined || (await heldByAnotherWithin(ports, tenantId, address, holder, start, end))) return undefined;
  if (since !== undefined && holder === now && Date.parse(since) <= Date.parse(start)) return holder;
  const before = await leaseHolder(ports, tenantId, address, start);
  return before === undefined || before === holder ? holder : undefined;
}

export async function detectFlowAnomalies(
  ports: Ports,
  ctx: RequestContext,
  report: Report,
  settings: DetectorSettings = defaultDetectorSettings,
  scope?: FeedScope,
): Promise<Outcome<Anomaly[]>> {
  const byDevice = await flowsByDevice(ports, ctx.tenantId, report, scope);
  const anomalies: Anomaly[] = [];
  let pending = [...byDevice.keys()];
  for (let attempt = 1; pending.length > 0 && attempt <= maxAttempts; attempt++) {
    const baselines = (await readBaselines(ports, ctx.tenantId, pending, [])).devices;
    // The device's segment as its labels say now (the device cache's staleness at most: review 132, a device moved to
    // another fleet was judged against its old one, and taught it, for up to 100 learned windows, over 50 hours).
    const segmentOf = new Map<string, string | undefined>();
    for (const deviceId of pending) {
      const labels = (await recentDevice(ports, ctx.tenantId, deviceId))?.device.labels;
      if (labels)
        segmentOf.set(
          deviceId,
          segmentLabels.map((label) => labels[label]).find((value) => value !== undefined),
        );
      else byDevice.delete(deviceId);
    }
    const names = [...new Set([...segmentOf.values()].filter((segment): segment is string => segment !== undefined))];
    const segments = (await readBaselines(ports, ctx.tenantId, [], names)).segments;
    const conflicted: string[] = [];
    await Promise.all(
      pending
        .filter((deviceId) => byDevice.has(deviceId))
        .map(async (deviceId) => {
          const name = segmentOf.get(deviceId);
          const segment: SegmentBaseline | undefined = name
            ? (segments.get(name) ?? { segment: name, since: report.windowEnd, destinations: {} })
            : undefined;
          const observation = { deviceId, at: report.windowEnd, pepId: report.pepId, flows: byDevice.get(deviceId)! };
          const verdict = observeWindow(baselines.get(deviceId), segment, observation, settings);
          if (verdict.learned && !(await saveBaseline(ports, ctx.tenantId, verdict.baseline))) return void conflicted.push(deviceId);
          anomalies.push(...verdict.anomalies);
          const quorate =
            name && verdict.segmentFlags.length > 0
              ? await flagSegment(ports, ctx.tenantId, name, deviceId, verdict.segmentFlags, settings.segmentQuorum)
              : [];
          const learns = [...verdict.segmentLearns, ...quorate];
          if (name && learns.length > 0)
            await learnSegment(ports, ctx.tenantId, name, learns, report.windowEnd, settings.maxSegmentDestinations);
        }),
    );
    pending = conflicted;
  }
  // The detectors decided, on what the reporting enforcement point (named in each anomaly's flows) saw.
  // Not the reporting key's role: the detectors act (context.ts `role`).
  const detectors = { tenantId: ctx.tenantId, actor: "system:detectors", requestId: ctx.requestId };
  return recordAnomalies(ports, detectors, anomalies, report.id === undefined ? undefined : `flows:${report.id}`);
}

/**
 * The device an event on the bus is about: applied changes name it; reported facts are resolved, afresh (review 110: the
 * detectors' instances cache aliases apart from the applier's, and a cached one may name a device revoked since, its
 * SIM registered again, which would take the replacement's anomaly).
 */
async function deviceOf(ports: Ports, event: DomainEvent): Promise<string | undefined> {
  if (event.origin !== "ingest") return typeof event.data.deviceId === "string" ? event.data.deviceId : event.subject;
  const reported = event.data.event as { device?: Record<string, string> } | undefined;
  return reported?.device ? resolveDevice(ports, event.tenantId, reported.device, true) : undefined;
}

export async function detectEventAnomalies(
  ports: Ports,
  event: DomainEvent,
  settings: DetectorSettings = defaultDetectorSettings,
): Promise<Outcome<Anomaly[]>> {
  const deviceId = await deviceOf(ports, event);
  if (!deviceId) return { value: [], events: [] };
  const ctx: RequestContext = { tenantId: event.tenantId, actor: "system:detectors", requestId: event.requestId };
  const { allowedCountries } = await tenantSettings(ports, event.tenantId);
  for (let attempt = 1; ; attempt++) {
    const baseline = await readBaseline(ports, event.tenantId, deviceId);
    const verdict = judgeFact(event, deviceId, baseline, allowedCountries, settings);
    if (verdict.learnBearer) {
      const base = baseline ?? emptyBaseline(deviceId, event.time);
      const bearers = Object.keys(
        rememberRecent(
          Object.fromEntries(base.bearers.map((b, i) => [b, i])),
          [verdict.learnBearer],
          base.bearers.length,
          settings.maxBearers,
        ),
      );
      if (!(await saveBaseline(ports, event.tenantId, { ...base, bearers })) && attempt < maxAttempts) continue;
    }
    // Once per occurrence: a reported fact redelivered by its source comes as a new event with the same dedupe key.
    const reported = event.origin === "ingest" ? (event.data as { sourceId?: string; event?: { dedupeKey?: string } }) : undefined;
    const once = reported ? `fact:${reported.sourceId}|${reported.event?.dedupeKey}` : `event:${event.id}`;
    return recordAnomalies(ports, ctx, verdict.anomaly ? [verdict.anomaly] : [], once);
  }
}
