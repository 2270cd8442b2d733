/**
 * Device actions an operator takes through the API: suspend, quarantine, reinstate,
 * revoke (terminal). Each is a fact like any operator report, so the one fold orders it
 * among them, and each is audited and emits its event.
 */
import { z } from "zod";
import { domainEvent } from "../event/event.ts";
import { SimrootError } from "../error.ts";
import { applyFact } from "../identity/apply-fact.ts";
import type { Fact } from "../identity/fact.ts";
import { verb } from "../verb.ts";
import { readDevice } from "./store.ts";

export const deviceActions = {
  suspend: "device.suspended",
  quarantine: "device.quarantined",
  reinstate: "device.reinstated",
  revoke: "device.revoked",
} as const;
export type DeviceAction = keyof typeof deviceActions;

export const deviceActionInput = z.object({
  id: z.string(),
  action: z.enum(Object.keys(deviceActions) as [DeviceAction, ...DeviceAction[]]),
  reason: z.string().min(1, "say why").max(500),
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
  const fact = { type, data: { reason: input.reason }, key: `api|${event.id}`, at: now.toISOString() } as Fact;
  const result = await applyFact(ports, ctx, input.id, fact, { requestId: ctx.requestId, action: input.action });
  const device = await readDevice(ports, ctx.tenantId, input.id);
  return { value: { outcome: result.value.outcome, device: device!.device }, events: result.events };
});
