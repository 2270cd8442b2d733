/**
 * What an incident gathered, and the NIS2 drafts made from it (Directive (EU) 2022/2555,
 * Art. 23(4)): an early warning within 24 hours of becoming aware, an incident notification
 * within 72 hours, a final report within one month. Drafts: a person completes and sends them.
 */
import * as z from "zod";
import type { Anomaly } from "../anomaly/model.ts";
import type { RequestContext } from "../context.ts";
import type { Ports } from "../ports.ts";
import { verb } from "../verb.ts";
import { getIncident, incidentRecords, lifecycleActions, type Incident } from "./incident.ts";

const hour = 60 * 60 * 1000;

/** What an `anomaly.detected` record says was observed (its evidence's `seen`), when it says so. */
const seenBy = (data: Record<string, unknown>) => (data.evidence as Partial<Anomaly["evidence"]> | undefined)?.seen;

async function gather(ports: Ports, ctx: RequestContext, incident: Incident) {
  const { records, omitted } = await incidentRecords(ports, ctx, incident);
  const timeline = records.map((record) => ({
    seq: record.seq,
    time: record.time,
    type: record.action,
    actor: record.actor,
    data: record.data,
  }));
  const anomalies = timeline.filter((entry) => entry.type === "anomaly.detected");
  // The actions taken: a rule's firing that acted (with the actions it did), and what people and rules did to the
  // device. A dry run's, a rate-limited one's and an action skipped or failed are in the timeline, not taken
  // (review 55: a NIS2 draft listed a quarantine a dry run would have made).
  const actions = timeline.flatMap((entry) => {
    if (entry.type !== "automation.fired") return lifecycleActions.has(entry.type) && !entry.actor.startsWith("source:") ? [entry] : [];
    const done = ((entry.data.actions ?? []) as { outcome?: string }[]).filter((action) => action.outcome === "done");
    return entry.data.outcome === "fired" && done.length > 0 ? [{ ...entry, data: { ...entry.data, actions: done } }] : [];
  });
  return { timeline, anomalies, actions, omitted };
}

export const getIncidentReport = verb(z.object({ id: z.string() }), async (ports, ctx, input) => {
  const incident = await getIncident(ports, ctx, input);
  return { incident, ...(await gather(ports, ctx, incident)) };
});

export const getNis2Drafts = verb(z.object({ id: z.string() }), async (ports, ctx, input) => {
  const incident = await getIncident(ports, ctx, input);
  const { anomalies, actions } = await gather(ports, ctx, incident);
  const aware = Date.parse(incident.openedAt);
  const first = anomalies[0];
  const kinds = [...new Set(anomalies.map((anomaly) => String(anomaly.data.kind)))];
  const countries = [...new Set(anomalies.map((anomaly) => seenBy(anomaly.data)?.country).filter(Boolean))];
  const malicious = kinds.some((kind) => ["imei-change", "sim-swap", "new-destination", "profile-switch"].includes(kind));
  const indicators = anomalies.map((anomaly) => ({
    kind: anomaly.data.kind,
    time: anomaly.time,
    seen: seenBy(anomaly.data),
  }));
  const measures = actions.map((action) => ({
    time: action.time,
    by: action.actor,
    what: action.type,
    detail: action.data.actions ?? action.data.reason,
  }));
  return {
    incidentId: incident.id,
    awareSince: incident.openedAt,
    earlyWarning: {
      dueBy: new Date(aware + 24 * hour).toISOString(),
      article: "NIS2 Art. 23(4)(a)",
      suspectedUnlawfulOrMalicious: malicious,
      possibleCrossBorderImpact: countries.length > 0,
      summary:
        `${anomalies.length} anomal${anomalies.length === 1 ? "y" : "ies"} (${kinds.join(", ") || "none recorded"}) on device ${incident.deviceId}` +
        (first ? `, first at ${first.time}` : "") +
        `; incident opened ${incident.openedAt} by ${incident.openedBy}.`,
    },
    notification: {
      dueBy: new Date(aware + 72 * hour).toISOString(),
      article: "NIS2 Art. 23(4)(b)",
      initialAssessment: { severity: incident.severity, status: incident.status, affectedDevices: [incident.deviceId], countries },
      indicatorsOfCompromise: indicators,
      measuresTaken: measures,
    },
    finalReport: {
      dueBy: new Date(aware + 30 * 24 * hour).toISOString(),
      article: "NIS2 Art. 23(4)(d)",
      rootCause: null,
      mitigation: measures,
      crossBorderImpact: countries,
    },
  };
});
