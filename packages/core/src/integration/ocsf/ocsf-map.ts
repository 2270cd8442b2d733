/**
 * simroot's records as OCSF events (schema 1.9.0-dev, the version the tests validate against):
 * - a PEP's flow report entry -> Network Activity (4001): Traffic when allowed, Refuse when denied;
 * - anomalies (`anomaly.*`) and a SIM seen in other equipment (`device.equipment-changed`)
 *   -> Detection Finding (2004);
 * - incidents (`incident.*`) -> Incident Finding (2005);
 * - every other audited change (devices, policies, grants, keys, settings, integrations)
 *   -> Entity Management (3004), the device or object as the managed entity.
 * Events are mapped by their type name, so kinds added later (anomalies, incidents) join by name.
 */
import type { DomainEvent } from "../../event/event.ts";

export const ocsfVersion = "1.9.0-dev";
const product = { name: "simroot", vendor_name: "simroot", version: "0.1.0" };

export type OcsfEvent = Record<string, unknown> & { class_uid: number; activity_id: number; type_uid: number; time: number };

const classes = { networkActivity: 4001, detectionFinding: 2004, incidentFinding: 2005, entityManagement: 3004 } as const;
const categoryOf = (classUid: number) => Math.floor(classUid / 1000);
const categoryNames: Record<number, string> = { 2: "Findings", 3: "Identity & Access Management", 4: "Network Activity" };
const classNames: Record<number, string> = {
  4001: "Network Activity",
  2004: "Detection Finding",
  2005: "Incident Finding",
  3004: "Entity Management",
};

function envelope(
  classUid: number,
  activityId: number,
  activityName: string,
  time: number,
  severityId: number,
  metadata: Record<string, unknown>,
) {
  return {
    class_uid: classUid,
    class_name: classNames[classUid],
    category_uid: categoryOf(classUid),
    category_name: categoryNames[categoryOf(classUid)],
    activity_id: activityId,
    activity_name: activityName,
    type_uid: classUid * 100 + activityId,
    time,
    severity_id: severityId,
    metadata: { version: ocsfVersion, product, ...metadata },
  };
}

const iotDevice = (uid: string) => ({ uid, type_id: 7, type: "IOT" });

function actorOf(actor: string) {
  // `key:<id>`, `source:<id>`, `system:<component>`, `pep:<id>`.
  const [kind, id = actor] = actor.split(/:(.*)/s);
  return kind === "system" ? { app_name: `simroot ${id}` } : { user: { uid: actor, name: id, type: kind === "key" ? "API key" : kind } };
}

const entityActivities: Record<string, [number, string]> = {
  "device.registered": [1, "Create"],
  "device.updated": [3, "Update"],
  "device.suspended": [12, "Suspend"],
  "device.quarantined": [9, "Disable"],
  "device.reinstated": [13, "Resume"],
  "device.revoked": [11, "Deactivate"],
};

function activityByVerb(type: string): [number, string] {
  if (entityActivities[type]) return entityActivities[type];
  if (/\.(created|registered|installed)$/.test(type)) return [1, "Create"];
  if (/\.(deleted|revoked|removed)$/.test(type)) return [4, "Delete"];
  return [3, "Update"];
}

const severityOf = (value: unknown, fallback: number) =>
  (({ informational: 1, info: 1, low: 2, medium: 3, high: 4, critical: 5 }) as Record<string, number>)[String(value).toLowerCase()] ??
  fallback;

const entityType = (subject: string) => (subject.startsWith("dev_") ? "Device" : subject.split("_")[0] || "Object");

function findingInfo(event: DomainEvent) {
  const data = event.data as Record<string, unknown>;
  return {
    uid: String(data.anomalyId ?? data.incidentId ?? data.findingId ?? event.id),
    title: String(
      data.title ?? data.summary ?? (event.type === "device.equipment-changed" ? "SIM seen in other equipment (IMEI changed)" : event.type),
    ),
    types: [event.type],
    created_time: Date.parse(event.time),
    analytic: { name: String(data.detector ?? data.rule ?? event.type), type_id: 1, type: "Rule" },
  };
}

/** One audited simroot event as the OCSF event of the class that fits it. */
export function ocsfFromEvent(event: DomainEvent): OcsfEvent {
  const time = Date.parse(event.time);
  const metadata = {
    uid: event.id,
    tenant_uid: event.tenantId,
    correlation_uid: event.requestId,
    log_name: "simroot audit",
    event_code: event.type,
  };
  const data = event.data as Record<string, unknown>;
  const device = event.subject.startsWith("dev_") ? { device: iotDevice(event.subject) } : {};
  if (event.type.startsWith("incident.")) {
    const closing = /\.(resolved|closed)$/.test(event.type);
    const activity: [number, string] = /\.(opened|created)$/.test(event.type) ? [1, "Create"] : closing ? [3, "Close"] : [2, "Update"];
    return {
      ...envelope(classes.incidentFinding, activity[0], activity[1], time, severityOf(data.severity, 3), metadata),
      finding_info_list: [findingInfo(event)],
      status_id: closing ? 4 : activity[0] === 1 ? 1 : 2,
      status: closing ? "Resolved" : activity[0] === 1 ? "New" : "In Progress",
      message: `${event.type} ${event.subject}`,
      actor: actorOf(event.actor),
      unmapped: { data },
    } as OcsfEvent;
  }
  if (event.type.startsWith("anomaly.") || event.type === "device.equipment-changed") {
    return {
      ...envelope(classes.detectionFinding, 1, "Create", time, severityOf(data.severity, 4), metadata),
      finding_info: findingInfo(event),
      is_alert: true,
      status_id: 1,
      message: `${event.type} on ${event.subject}`,
      ...device,
      unmapped: { data },
    } as OcsfEvent;
  }
  const [activityId, activityName] = activityByVerb(event.type);
  const reason = typeof data.reason === "string" ? data.reason : undefined;
  return {
    ...envelope(classes.entityManagement, activityId, activityName, time, event.type === "device.revoked" ? 4 : 1, metadata),
    entity: {
      uid: event.subject,
      type: entityType(event.subject),
      ...(event.subject.startsWith("dev_") ? { device: iotDevice(event.subject) } : {}),
    },
    actor: actorOf(event.actor),
    message: `${event.type}${reason ? `: ${reason}` : ""}`,
    ...(reason ? { comment: reason } : {}),
    ...device,
    unmapped: { event_type: event.type, data },
  } as OcsfEvent;
}

export interface FlowEntry {
  readonly deviceId?: string;
  readonly sourceIp?: string;
  readonly destination: string;
  readonly port: number;
  readonly protocol: "tcp" | "udp";
  readonly decision: "allow" | "deny";
  readonly reason: string;
  readonly count: number;
  readonly bytes: number;
}

const isIp = (value: string) => /^[\d.]+$/.test(value) || value.includes(":");

/** One aggregated flow of a PEP's report as a Network Activity event (count, start and end time: an aggregate). */

/**
 * A flow's source as an OCSF network endpoint, which needs at least one of its identifying fields: the device's id and
 * address when the PEP knew them (`unknown` is no `ip_t`), else a name saying so (review 133: such records broke the
 * schema, and a strict SIEM refuses them).
 */
function sourceEndpoint(flow: FlowEntry) {
  const ip = flow.sourceIp && flow.sourceIp !== "unknown" ? { ip: flow.sourceIp } : {};
  const known = { ...(flow.deviceId ? { uid: flow.deviceId } : {}), ...ip };
  return { ...(Object.keys(known).length > 0 ? known : { name: "unknown" }), type_id: 7 };
}

export function ocsfFromFlow(
  report: {
    readonly tenantId: string;
    readonly pepId: string;
    readonly windowStart: string;
    readonly windowEnd: string;
    readonly id: string;
  },
  flow: FlowEntry,
  index: number,
): OcsfEvent {
  const start = Date.parse(report.windowStart);
  const end = Date.parse(report.windowEnd);
  const allowed = flow.decision === "allow";
  const metadata = {
    uid: `${report.id}#${index}`,
    tenant_uid: report.tenantId,
    log_name: "simroot flows",
    reporter: { name: report.pepId },
  };
  return {
    ...envelope(classes.networkActivity, allowed ? 6 : 5, allowed ? "Traffic" : "Refuse", end, allowed ? 1 : 3, metadata),
    start_time: start,
    end_time: end,
    count: flow.count,
    duration: end - start,
    action_id: allowed ? 1 : 2,
    action: allowed ? "Allowed" : "Denied",
    disposition_id: allowed ? 1 : 2,
    src_endpoint: sourceEndpoint(flow),
    dst_endpoint: { ...(isIp(flow.destination) ? { ip: flow.destination } : { hostname: flow.destination }), port: flow.port },
    connection_info: { protocol_name: flow.protocol, protocol_num: flow.protocol === "tcp" ? 6 : 17, direction_id: 2 },
    traffic: { bytes: flow.bytes },
    ...(flow.deviceId ? { device: iotDevice(flow.deviceId) } : {}),
    message: `${flow.decision} ${flow.protocol}/${flow.port} to ${flow.destination} (${flow.reason})`,
    unmapped: { reason: flow.reason, pep: report.pepId },
  } as OcsfEvent;
}
