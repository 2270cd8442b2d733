/**
 * Incidents: opened by an automation rule (action `open-incident`) or through the API, one
 * open incident per device at a time (a second trigger while it is open joins it). Reading
 * one gathers, from the audit trail, the device's timeline since shortly before it opened,
 * the anomalies and the actions taken (by rules and people).
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import * as z from "zod";
import { subjectPage } from "../audit/subject.ts";
import type { AuditRecord } from "../ledger/audit-record.ts";
import type { RequestContext } from "../context.ts";
import { readDevice } from "../device/store.ts";
import { SimrootError, isSimrootError } from "../error.ts";
import { domainEvent, type DomainEvent } from "../event/event.ts";
import { newId } from "../id.ts";
import type { Outcome } from "../outcome.ts";
import { pageInput, type Page } from "../page.ts";
import type { Ports } from "../ports.ts";
import { verb } from "../verb.ts";
import { listRecords, readRecord, recordKey } from "../automation/records.ts";

/** How far before its opening an incident's timeline reaches. */
export const lookbackMs = 7 * 24 * 60 * 60 * 1000;

export const incidentSchema = z
  .object({
    id: z.string(),
    deviceId: z.string(),
    status: z.enum(["open", "closed"]),
    severity: z.enum(["low", "medium", "high"]),
    openedAt: z.string(),
    openedBy: z.string().meta({ description: "rule:<id>, key:<id>, ..." }),
    trigger: z.object({ eventId: z.string(), type: z.string(), time: z.string(), data: z.record(z.string(), z.unknown()) }).optional(),
    summary: z.string().optional(),
    closedAt: z.string().optional(),
    revision: z.number().int(),
  })
  .meta({ id: "Incident" });
export type Incident = z.output<typeof incidentSchema>;

const openPointer = (tenantId: string, deviceId: string) => ({ pk: `T#${tenantId}#incident-open`, sk: deviceId });

export async function openIncident(
  ports: Ports,
  ctx: RequestContext,
  input: { deviceId: string; severity: Incident["severity"]; trigger?: DomainEvent; ruleId?: string; summary?: string },
): Promise<Outcome<Incident>> {
  const { Item } = await readPointer(ports, ctx.tenantId, input.deviceId);
  if (Item) return { value: incidentSchema.parse(await readRecord(ports, ctx.tenantId, "incident", String(Item.incidentId))), events: [] };
  const now = ports.now();
  const incident: Incident = {
    id: newId("incident", now.getTime()),
    deviceId: input.deviceId,
    status: "open",
    severity: input.severity,
    openedAt: now.toISOString(),
    openedBy: ctx.actor,
    ...(input.trigger
      ? { trigger: { eventId: input.trigger.id, type: input.trigger.type, time: input.trigger.time, data: input.trigger.data } }
      : {}),
    ...(input.summary ? { summary: input.summary } : {}),
    revision: 1,
  };
  const event = domainEvent(
    ctx,
    "incident.opened",
    input.deviceId,
    {
      incidentId: incident.id,
      deviceId: input.deviceId,
      severity: incident.severity,
      ruleId: input.ruleId,
      trigger: incident.trigger?.eventId,
    },
    now,
  );
  try {
    await ports.ledger.commit({
      tenantId: ctx.tenantId,
      events: [event],
      writes: [
        {
          Put: {
            TableName: ports.tables.automation,
            Item: { ...recordKey(ctx.tenantId, "incident", incident.id), ...incident },
            ConditionExpression: "attribute_not_exists(pk)",
          },
        },
        {
          Put: {
            TableName: ports.tables.automation,
            Item: { ...openPointer(ctx.tenantId, input.deviceId), incidentId: incident.id },
            ConditionExpression: "attribute_not_exists(pk)",
          },
        },
      ],
      onConditionFailed: () => new SimrootError("incident.already_open", "conflict", "an incident is already open for this device"),
    });
  } catch (error) {
    if (isSimrootError(error) && error.code === "incident.already_open") return openIncident(ports, ctx, input);
    throw error;
  }
  return { value: incident, events: [event] };
}

async function readPointer(ports: Ports, tenantId: string, deviceId: string) {
  return ports.db.send(new GetCommand({ TableName: ports.tables.automation, Key: openPointer(tenantId, deviceId), ConsistentRead: true }));
}

export const openIncidentInput = z
  .strictObject({
    deviceId: z.string(),
    severity: z.enum(["low", "medium", "high"]).default("high"),
    summary: z.string().max(2000).optional(),
  })
  .meta({ id: "IncidentInput" });

export const createIncident = verb(openIncidentInput, async (ports, ctx, input) => {
  if (!(await readDevice(ports, ctx.tenantId, input.deviceId))) {
    throw new SimrootError("incident.unknown_device", "input", "No such device in this tenant", {
      issues: [{ path: "deviceId", message: "no such device" }],
    });
  }
  return openIncident(ports, ctx, input);
});

export const getIncident = verb(z.object({ id: z.string() }), async (ports, ctx, input): Promise<Incident> => {
  const item = await readRecord(ports, ctx.tenantId, "incident", input.id);
  if (!item) throw new SimrootError("incident.not_found", "not_found", `No incident ${input.id}`);
  return incidentSchema.parse(item);
});

export const listIncidents = verb(
  pageInput,
  async (ports, ctx, input): Promise<Page<Incident>> =>
    listRecords(ports, ctx.tenantId, "incident", input, (item) => incidentSchema.parse(item)),
);

export const closeIncident = verb(
  z.object({ id: z.string(), summary: z.string().min(1).max(2000) }),
  async (ports, ctx, input): Promise<Outcome<Incident>> => {
    const incident = await getIncident(ports, ctx, { id: input.id });
    if (incident.status === "closed") throw new SimrootError("incident.closed", "conflict", "The incident is already closed");
    const now = ports.now();
    const closed: Incident = {
      ...incident,
      status: "closed",
      summary: input.summary,
      closedAt: now.toISOString(),
      revision: incident.revision + 1,
    };
    const event = domainEvent(
      ctx,
      "incident.closed",
      incident.deviceId,
      { incidentId: incident.id, deviceId: incident.deviceId, summary: input.summary },
      now,
    );
    await ports.ledger.commit({
      tenantId: ctx.tenantId,
      events: [event],
      writes: [
        {
          Put: {
            TableName: ports.tables.automation,
            Item: { ...recordKey(ctx.tenantId, "incident", incident.id), ...closed },
            ConditionExpression: "revision = :r",
            ExpressionAttributeValues: { ":r": incident.revision },
          },
        },
        { Delete: { TableName: ports.tables.automation, Key: openPointer(ctx.tenantId, incident.deviceId) } },
      ],
    });
    return { value: closed, events: [event] };
  },
);

/** The records of the week before an incident its report keeps: the newest, which lead up to it. */
export const maxLeadUpRecords = 2_000;

/**
 * What an incident's report keeps of its own span (its opening to its close): every record of a kind that says what
 * happened (`notableRecord`), up to `notableRecords`, and of the others (sessions, sightings) the oldest `headRecords`
 * and the newest `tailRecords`, the rest counted as omitted. At most `pages` pages of `pageSize` are read (a page is
 * a few queries and consistent reads of about 1 MB: 40 of them fit the API function's time, 200 did not: review 155);
 * past them, what follows is not read, except a closed incident's close.
 */
export const spanBounds = { notableRecords: 20_000, headRecords: 10_000, tailRecords: 2_000, pages: 40, pageSize: 1_000 };
export type SpanBounds = typeof spanBounds;

/** The device's lifecycle and grants: what people and rules did to it. */
export const lifecycleActions: ReadonlySet<string> = new Set([
  "device.quarantined",
  "device.suspended",
  "device.revoked",
  "device.reinstated",
  "device.updated",
  "grant.created",
  "grant.revoked",
]);

/** A record an incident's report keeps however many others its span holds: the incident's own, anomalies, rules' firings, measures. */
export const notableRecord = (record: Pick<AuditRecord, "action">) =>
  record.action.startsWith("incident.") ||
  record.action === "anomaly.detected" ||
  record.action === "automation.fired" ||
  lifecycleActions.has(record.action);

const positionOf = (record: AuditRecord) => `${record.shard}|${record.seq}`;

/**
 * The device's audit records, oldest first: the newest `maxLeadUpRecords` of the `lookbackMs` before the incident, then
 * its own span, from its opening to its close (the close included: `to` is exclusive) or now, as `spanBounds` keeps it;
 * `omitted` counts the span's records left out. Review 125: the first 5,000 records of the whole range were kept, and a
 * device chatty in the week before (an attach and a detach every few minutes) lost the incident's opening, its anomalies
 * and every measure taken from its report and its NIS2 drafts; then the span's first 20,000 records were, and a span
 * longer than that lost its close and every measure after them.
 */
export async function incidentRecords(
  ports: Ports,
  ctx: RequestContext,
  incident: Incident,
  bounds: SpanBounds = spanBounds,
): Promise<{ records: AuditRecord[]; omitted: number }> {
  const from = new Date(Date.parse(incident.openedAt) - lookbackMs).toISOString();
  const to = incident.closedAt === undefined ? undefined : new Date(Date.parse(incident.closedAt) + 1).toISOString();
  // (Times of the store: UTC, as the audit API's bounds are made.)
  /** `take` is told whether more follows the page; it answers whether to read on. */
  const read = async (start: string, end: string | undefined, take: (page: AuditRecord[], more: boolean) => boolean) => {
    let cursor: string | undefined;
    do {
      const page = await subjectPage(ports, ctx.tenantId, incident.deviceId, bounds.pageSize, cursor, start, end);
      cursor = take(page.items, page.next !== undefined) ? page.next : undefined;
    } while (cursor);
  };
  const leadUp: AuditRecord[] = [];
  await read(from, incident.openedAt, (page) => {
    leadUp.push(...page);
    if (leadUp.length > maxLeadUpRecords) leadUp.splice(0, leadUp.length - maxLeadUpRecords);
    return true;
  });
  // The span: kept records with their place in it, so that they are put back in order.
  const kept: { at: number; record: AuditRecord }[] = [];
  let tail: { at: number; record: AuditRecord }[] = [];
  let seen = 0;
  let notable = 0;
  let others = 0;
  let pages = 0;
  let unread = false;
  await read(incident.openedAt, to, (page, more) => {
    for (const record of page) {
      const at = seen++;
      if (notableRecord(record) && notable < bounds.notableRecords) {
        notable++;
        kept.push({ at, record });
      } else if (others++ < bounds.headRecords) kept.push({ at, record });
      else {
        tail.push({ at, record });
        if (tail.length > 2 * bounds.tailRecords) tail = tail.slice(-bounds.tailRecords);
      }
    }
    pages += 1;
    unread = more && pages >= bounds.pages;
    return !unread;
  });
  tail = tail.slice(-bounds.tailRecords);
  const span = [...kept, ...tail].sort((a, b) => a.at - b.at).map(({ record }) => record);
  let omitted = seen - span.length;
  // Stopped before the end: a closed incident's close is read on its own (what happened after the pages read is not).
  if (unread && incident.closedAt !== undefined) {
    const have = new Set(span.map(positionOf));
    await read(incident.closedAt, to, (page) => {
      span.push(...page.filter((record) => !have.has(positionOf(record))));
      return true;
    });
  }
  if (unread) omitted = Math.max(omitted, 1);
  return { records: [...leadUp, ...span], omitted };
}
