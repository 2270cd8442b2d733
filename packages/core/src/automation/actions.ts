/**
 * What each automation action does, through the very verbs the API uses, acting as the rule
 * (`ctx.actor` = `rule:<id>`, so every action's audit record names the rule that caused it).
 * Each returns what happened and the events it caused.
 */
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { RequestContext } from "../context.ts";
import { actOnDevice } from "../device/actions.ts";
import { readDevice } from "../device/store.ts";
import { updateDevice } from "../device/update.ts";
import { isSimrootError } from "../error.ts";
import type { BusEnvelope } from "../event/envelope.ts";
import type { DomainEvent } from "../event/event.ts";
import { openIncident } from "../incident/incident.ts";
import { idFromSeed } from "../id.ts";
import { createGrantOnce, revokeGrant } from "../policy/grant-store.ts";
import type { Ports } from "../ports.ts";
import { enqueueDelivery } from "../webhook/delivery.ts";
import { labelOrderPartition, labelOrderSeconds, personSetKey } from "./label-order.ts";
import type { AutomationAction, AutomationRule } from "./rule.ts";

export interface ActionResult {
  readonly type: AutomationAction["type"];
  readonly outcome: "done" | "unchanged" | "skipped" | "would-do" | "failed";
  readonly detail?: string;
}

type Done = { result: ActionResult; events: readonly DomainEvent[] };

export const deviceOfEvent = (event: DomainEvent): string | undefined =>
  typeof event.data.deviceId === "string" ? event.data.deviceId : event.subject.startsWith("dev_") ? event.subject : undefined;

async function relabel(
  ports: Ports,
  ctx: RequestContext,
  deviceId: string,
  change: (labels: Record<string, string>) => Record<string, string>,
) {
  for (let attempt = 1; ; attempt++) {
    const stored = await readDevice(ports, ctx.tenantId, deviceId);
    if (!stored) return undefined;
    // A revoked device keeps the labels it was revoked with (device/update.ts, review 158): nothing to do (review 161: a
    // rule adding a label on `device.revoked` failed every firing).
    if (stored.device.state === "revoked") return "revoked" as const;
    const labels = change({ ...stored.device.labels });
    if (JSON.stringify(labels) === JSON.stringify(stored.device.labels)) return { events: [] };
    try {
      return await updateDevice(ports, ctx, { id: deviceId, ifRevision: stored.device.revision, changes: { labels } });
    } catch (error) {
      if (!(isSimrootError(error) && error.code === "request.precondition_failed" && attempt < 4)) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * 2 ** attempt));
    }
  }
}

/**
 * The label keys an action on `event` may still change: each key takes the revision of the change the event tells
 * (`data.revision`, the device's once changed), unless an event of a later change acted on the key first, or a person
 * set it through the API at a later revision (review 115: EventBridge delivers in any order, and two rules with opposite
 * actions on one device ended in the state of the event delivered last, the older change's; a person's label was
 * overwritten by a late event of a change before it). An event without a revision (recorded before 2026-12-07, or not a
 * change of the device's own) is not ordered. See label-order.ts.
 */
async function keysInOrder(ports: Ports, event: DomainEvent, deviceId: string, keys: readonly string[]): Promise<readonly string[]> {
  const revision = event.data.revision;
  if (typeof revision !== "number" || event.subject !== deviceId) return keys;
  const expiresAt = Math.floor(ports.now().getTime() / 1000) + labelOrderSeconds;
  const { Item: personSet } = await ports.db.send(
    new GetCommand({ TableName: ports.tables.automation, Key: personSetKey(event.tenantId, deviceId), ConsistentRead: true }),
  );
  // A person relabelled the device after this change: the labels are theirs.
  if (Number(personSet?.revision ?? 0) > revision) return [];
  const kept: string[] = [];
  for (const key of keys) {
    try {
      await ports.db.send(
        new UpdateCommand({
          TableName: ports.tables.automation,
          Key: { pk: labelOrderPartition(event.tenantId, deviceId), sk: key },
          UpdateExpression: "SET revision = :revision, expiresAt = :expires",
          // At the same revision too: a redelivery of the event (its first delivery failed after this) acts again.
          ConditionExpression: "attribute_not_exists(pk) OR revision <= :revision",
          ExpressionAttributeValues: { ":revision": revision, ":expires": expiresAt },
        }),
      );
      kept.push(key);
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }
  return kept;
}

export async function runAction(
  ports: Ports,
  ctx: RequestContext,
  rule: AutomationRule,
  action: AutomationAction,
  envelope: BusEnvelope,
): Promise<Done> {
  const event = envelope.detail;
  const deviceId = deviceOfEvent(event);
  const result = (outcome: ActionResult["outcome"], detail?: string, events: readonly DomainEvent[] = []): Done => ({
    result: { type: action.type, outcome, ...(detail ? { detail } : {}) },
    events,
  });
  const needsDevice = !["notify", "end-grant"].includes(action.type);
  if (needsDevice && !deviceId) return result("skipped", "the event names no device");
  try {
    switch (action.type) {
      case "quarantine":
      case "suspend":
      case "revoke": {
        const reason = action.reason ?? `automation rule ${rule.name} (${rule.id}) on ${event.type} ${event.id}`;
        const outcome = await actOnDevice(ports, ctx, { id: deviceId!, action: action.type, reason });
        return result(outcome.value.outcome === "applied" ? "done" : "unchanged", `device ${outcome.value.device.state}`, outcome.events);
      }
      case "add-labels":
      case "remove-labels": {
        const keys = await keysInOrder(ports, event, deviceId!, action.type === "add-labels" ? Object.keys(action.labels) : action.keys);
        if (keys.length === 0) return result("skipped", "a later change of the device acted on these labels first");
        const outcome = await relabel(ports, ctx, deviceId!, (labels) => {
          if (action.type === "add-labels") for (const key of keys) labels[key] = action.labels[key]!;
          else for (const key of keys) delete labels[key];
          return labels;
        });
        if (!outcome) return result("skipped", `no device ${deviceId}`);
        if (outcome === "revoked") return result("skipped", "a revoked device keeps the labels it was revoked with");
        return result(outcome.events.length > 0 ? "done" : "unchanged", undefined, outcome.events);
      }
      case "start-grant": {
        const now = ports.now();
        // One grant per rule, event and start-grant action, however many times the event is delivered (review 67). The
        // action is named by its place among the rule's start-grants, not by what it says: an edit of the rule between
        // two deliveries made another id, and a second grant (review 68).
        const place = rule.actions.slice(0, rule.actions.indexOf(action)).filter((each) => each.type === "start-grant").length;
        const id = idFromSeed("grant", Date.parse(event.time) || now.getTime(), `${rule.id}|${event.id}|start-grant|${place}`);
        const grant = await createGrantOnce(
          ports,
          ctx,
          {
            principal: action.principal,
            target: { deviceId: deviceId! },
            destinations: action.destinations,
            notBefore: now.toISOString(),
            notAfter: new Date(now.getTime() + action.minutes * 60_000).toISOString(),
          },
          id,
        );
        return result(grant.created ? "done" : "unchanged", grant.value.id, grant.events);
      }
      case "end-grant": {
        const grantId = action.grantId ?? (event.subject.startsWith("grt_") ? event.subject : undefined);
        if (!grantId) return result("skipped", "no grant named");
        const grant = await revokeGrant(ports, ctx, { id: grantId, reason: `automation rule ${rule.name} (${rule.id})` });
        return result("done", grantId, grant.events);
      }
      case "notify": {
        // The rule acts as its tenant (docs/continuous-verification.md); what the subscription is sent is its own role's.
        const queued = await enqueueDelivery(ports, event.tenantId, action.webhookId, envelope);
        const none = `no enabled webhook ${action.webhookId} whose role may read ${event.type}`;
        return result(queued ? "done" : "skipped", queued ? `delivery ${queued}` : none);
      }
      case "open-incident": {
        const incident = await openIncident(ports, ctx, {
          deviceId: deviceId!,
          severity: action.severity,
          trigger: event,
          ruleId: rule.id,
        });
        return result(incident.events.length > 0 ? "done" : "unchanged", incident.value.id, incident.events);
      }
    }
  } catch (error) {
    if (isSimrootError(error) && error.kind !== "unavailable" && error.kind !== "internal" && !contended(error))
      return result("failed", `${error.code}: ${error.message}`);
    throw error;
  }
}

/**
 * Lost a race with the subject's other writers, however many times it read again: the event is delivered again (the
 * bus retries a failed invocation, and the firing's claim stays for it), not recorded as done with the action failed for
 * good (review 128: a device busy with other changes, as it is when rules fire, was never contained).
 */
const contended = (error: { code: string }) => error.code === "store.conflict" || error.code === "request.precondition_failed";
