/**
 * One event of every shape the OCSF mappers produce: what the tests validate, and what
 * `scripts/ocsf-extract.ts` validates against the full schema to learn which files the
 * repository's subset must keep.
 */
import type { DomainEvent } from "../../event/event.ts";
import { ocsfFromEvent, ocsfFromFlow, type OcsfEvent } from "./ocsf-map.ts";

const base = { tenantId: "ten_01JD3Q4ZK8W9X2V5N6M7P8R9ST", time: "2026-12-02T05:00:00.000Z", requestId: "req_1", actor: "key:key_1" };
const device = "dev_01JD3Q4ZK8W9X2V5N6M7P8R9ST";

export const sampleEvents: DomainEvent[] = [
  { ...base, id: "evt_1", type: "device.registered", subject: device, data: { device: { id: device } } },
  {
    ...base,
    id: "evt_2",
    type: "device.quarantined",
    subject: device,
    actor: "system:apply",
    data: { reason: "IMEI changed", previousState: "active" },
  },
  { ...base, id: "evt_3", type: "device.revoked", subject: device, data: { reason: "stolen" } },
  { ...base, id: "evt_4", type: "policy.updated", subject: "pol_1", data: {} },
  {
    ...base,
    id: "evt_5",
    type: "integration.iot-synced",
    subject: device,
    actor: "system:iot-sync",
    data: { actions: ["group.quarantined"] },
  },
  {
    ...base,
    id: "evt_6",
    type: "device.equipment-changed",
    subject: device,
    actor: "source:src_1",
    data: { imei: "490154203237518", previousImei: "356938035643809" },
  },
  // Shapes of the anomaly and incident events added in parallel (issue 14): joined by type name.
  {
    ...base,
    id: "evt_7",
    type: "anomaly.detected",
    subject: device,
    actor: "system:detector",
    data: { anomalyId: "ano_1", detector: "volume-spike", severity: "high", title: "Traffic 40x the baseline" },
  },
  {
    ...base,
    id: "evt_8",
    type: "incident.opened",
    subject: "inc_1",
    actor: "system:automation",
    data: { incidentId: "inc_1", severity: "critical", title: "SIM swap on 3 meters" },
  },
  { ...base, id: "evt_9", type: "incident.resolved", subject: "inc_1", data: { incidentId: "inc_1" } },
];

export const sampleFlowReport = {
  tenantId: base.tenantId,
  id: "evt_flow",
  pepId: "pep-lyon-1",
  windowStart: "2026-12-02T04:59:00.000Z",
  windowEnd: "2026-12-02T05:00:00.000Z",
  flows: [
    {
      deviceId: device,
      sourceIp: "10.20.0.7",
      destination: "ingest.example.com",
      port: 8883,
      protocol: "tcp" as const,
      decision: "allow" as const,
      reason: "allow.rule",
      count: 12,
      bytes: 48_213,
    },
    {
      sourceIp: "10.20.0.9",
      destination: "203.0.113.66",
      port: 53,
      protocol: "udp" as const,
      decision: "deny" as const,
      reason: "deny.default",
      count: 3,
      bytes: 0,
    },
  ],
};

export function sampleOcsfEvents(): OcsfEvent[] {
  return [...sampleEvents.map(ocsfFromEvent), ...sampleFlowReport.flows.map((flow, index) => ocsfFromFlow(sampleFlowReport, flow, index))];
}
