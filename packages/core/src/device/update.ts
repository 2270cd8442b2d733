import * as z from "zod";
import { personSetWrite } from "../automation/label-order.ts";
import { domainEvent } from "../event/event.ts";
import { SimrootError } from "../error.ts";
import type { Outcome } from "../outcome.ts";
import { changesNothing, sameValue, someChange } from "../patch.ts";
import { verb } from "../verb.ts";
import { countriesSchema } from "../identity/identity-state.ts";
import { enforcementView, labelsSchema, type Device } from "./device.ts";
import { deviceItem, forgetDevice, readDevice, rememberDevice } from "./store.ts";

export const updateDeviceInput = z.object({
  id: z.string(),
  /** The revision the caller saw (If-Match). */
  ifRevision: z.number().int().positive(),
  changes: someChange(
    z.strictObject({
      name: z.string().min(1).max(128).optional(),
      labels: labelsSchema.optional(),
      imeiLock: z.boolean().optional(),
      allowedCountries: countriesSchema.nullable().optional().meta({ description: "null: back to the tenant's rules" }),
    }),
  ),
});

const stale = () =>
  new SimrootError("request.precondition_failed", "conflict", "The device changed since you read it", { detail: { status: 412 } });

/** Renames, relabels or changes the IMEI lock of a device, under If-Match. Labels are replaced whole. */
export const updateDevice = verb(updateDeviceInput, async (ports, ctx, input): Promise<Outcome<Device>> => {
  const stored = await readDevice(ports, ctx.tenantId, input.id);
  if (!stored) throw new SimrootError("device.not_found", "not_found", `No device ${input.id}`);
  if (stored.device.revision !== input.ifRevision) throw stale();
  const now = ports.now();
  const { allowedCountries, ...changes } = input.changes;
  // allowedCountries null: back to the tenant's rules, a change only when the device holds countries of its own.
  const sameCountries =
    allowedCountries === null ? stored.device.allowedCountries === undefined : changesNothing(stored.device, { allowedCountries });
  if (sameCountries && changesNothing(stored.device, changes)) return { value: stored.device, events: [] };
  const next: Device = { ...stored.device, ...changes, revision: stored.device.revision + 1, updatedAt: now.toISOString() };
  if (allowedCountries === null) delete next.allowedCountries;
  else if (allowedCountries !== undefined) next.allowedCountries = allowedCountries;
  const event = domainEvent(ctx, "device.updated", input.id, { changes: input.changes, revision: next.revision }, now);
  // A person's relabel outranks a rule acting on an event of an earlier change delivered after it (review 115); a rule's
  // own relabel does not (an event of a change after the one it acted on still acts).
  const relabelled = changes.labels !== undefined && !sameValue(changes.labels, stored.device.labels);
  // A revoked device keeps the labels it was revoked with (review 158): its revocation marker lists the addresses the
  // revocation released under them, and a feed narrowed to its new labels would serve it revoked without them, so a stale
  // PEP of that site would let it reach break-glass destinations from its last address.
  if (relabelled && stored.device.state === "revoked")
    throw new SimrootError("device.revoked", "conflict", "A revoked device keeps the labels it was revoked with", {
      issues: [{ path: "changes.labels", message: "a revoked device's labels cannot change" }],
    });
  const byPerson = relabelled && !ctx.actor.startsWith("rule:");
  try {
    await ports.ledger.commit({
      tenantId: ctx.tenantId,
      writes: [
        {
          Put: {
            TableName: ports.tables.identity,
            Item: deviceItem(next, stored.history),
            ConditionExpression: "revision = :r",
            ExpressionAttributeValues: { ":r": stored.device.revision },
          },
        },
        ...(byPerson ? [personSetWrite(ports.tables, ctx.tenantId, input.id, next.revision, now)] : []),
      ],
      events: [event],
      // A relabel names the labels before it: a feed narrowed to a selector tells a PEP of a device leaving its scope.
      feed: [
        {
          kind: "device",
          key: input.id,
          value: enforcementView(next),
          ...(relabelled ? { labelsBefore: stored.device.labels } : {}),
        },
      ],
      onConditionFailed: stale,
    });
  } catch (error) {
    forgetDevice(ports, ctx.tenantId, input.id);
    throw error;
  }
  rememberDevice(ports, { device: next, history: stored.history });
  return { value: next, events: [event] };
});
