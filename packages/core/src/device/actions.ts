/**
 * Device actions an operator takes through the API: suspend, quarantine, reinstate,
 * revoke (terminal). Each is a fact like any operator report, so the one fold orders it
 * among them, and each is audited and emits its event.
 */
import * as z from "zod";
import { domainEvent } from "../event/event.ts";
import { SimrootError } from "../error.ts";
import { applyFact } from "../identity/apply-fact.ts";
import type { Fact } from "../identity/fact.ts";
import { verb } from "../verb.ts";
import type { History } from "../identity/fold.ts";
import { readDevice } from "./store.ts";

export const deviceActions = {
  suspend: "device.suspended",
  quarantine: "device.quarantined",
  reinstate: "device.reinstated",
  revoke: "device.revoked",
} as const;
export type DeviceAction = keyof typeof deviceActions;

export const deviceActionInput = z.strictObject({
  id: z.string(),
  action: z.enum(Object.keys(deviceActions) as [DeviceAction, ...DeviceAction[]]),
  reason: z
    .string({ error: (issue) => (issue.input === undefined ? "say why: a reason is required" : "a reason is text") })
    .min(1, "say why")
    .max(500),
});

export const actOnDevice = verb(deviceActionInput, async (ports, ctx, input) => {
  const stored = await readDevice(ports, ctx.tenantId, input.id);
  if (!stored) throw new SimrootError("device.not_found", "not_found", `No device ${input.id}`);
  if (stored.device.state === "revoked") {
    throw new SimrootError("device.revoked", "conflict", "A revoked device stays revoked: register the SIM again if it returns");
  }
  const now = ports.now();
  const type = deviceActions[input.action];
  const event = domainEvent(ctx, type, input.id, {}, now);
  const fact = { type, data: { reason: input.reason }, key: `api|${event.id}`, at: actionTime(stored.history, now) } as Fact;
  const result = await applyFact(ports, ctx, input.id, fact, { requestId: ctx.requestId, action: input.action });
  const device = await readDevice(ports, ctx.tenantId, input.id);
  return { value: { outcome: result.value.outcome, device: device!.device }, events: result.events };
});

/**
 * An operator's action decides from now on: it is ordered after every fact known when it is
 * taken, even one a sender dated (within the allowed skew) after the operator's clock.
 */
export function actionTime(history: History, now: Date): string {
  const known = [history.timeCutoff?.at, ...history.facts.filter((fact) => !fact.type.startsWith("profile.")).map((fact) => fact.at)];
  const latest = Math.max(now.getTime() - 1, ...known.map((at) => (at === undefined ? 0 : Date.parse(at))).filter(Number.isFinite));
  return new Date(Math.min(latest + 1, Date.parse("9999-12-31T23:59:59.999Z"))).toISOString();
}
