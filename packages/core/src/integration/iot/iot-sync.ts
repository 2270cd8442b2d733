/**
 * Brings a device's AWS IoT thing in line with simroot: its attributes (SIM identity, state,
 * labels), its state's thing group, and on revocation its certificates REVOKED with their
 * policies detached (IoT cannot un-revoke a certificate: revocation stays terminal, as in
 * simroot). It reconciles to the device's current state, not to the event, so a late, repeated
 * or out-of-order event converges to the same thing; reinstating moves the thing back to the
 * active group, which lifts the deny policies (the reversible part). Each delivery that changed
 * something is audited once.
 */
import { systemContext } from "../../context.ts";
import type { Device } from "../../device/device.ts";
import { readDevice } from "../../device/store.ts";
import { SimrootError } from "../../error.ts";
import type { DomainEvent } from "../../event/event.ts";
import type { Ports } from "../../ports.ts";
import { delivered, recordDelivery } from "../delivery.ts";
import { thingAttributes } from "./iot-attributes.ts";
import { stateGroups, thingTypeName } from "./iot-groups.ts";
import { IotMissingResource, type IotControl } from "./iot-port.ts";

export interface IotSyncSettings {
  readonly tenantId: string;
  readonly prefix: string;
}

const sameRecord = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([key, value]) => b[key] === value);

/** Reconciles the thing of one device; returns what it changed (empty when already in line). */
export async function reconcileThing(iot: IotControl, settings: IotSyncSettings, device: Device): Promise<string[]> {
  const actions: string[] = [];
  const groups = stateGroups(settings.prefix);
  const type = thingTypeName(settings.prefix);
  const target = groups[device.state];
  const attributes = thingAttributes(device);
  // A missing thing type or group is created on first need, then the call is made again.
  const setUp = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof IotMissingResource)) throw error;
      await iot.ensureThingType(type);
      await iot.ensureGroup(target);
      actions.push("setup");
      return run();
    }
  };
  const thing = await iot.getThing(device.id);
  if (!thing) {
    await setUp(() => iot.createThing(device.id, type, attributes));
    actions.push("thing.created");
  } else if (thing.thingTypeName !== type || !sameRecord(thing.attributes, attributes)) {
    await setUp(() => iot.updateThing(device.id, type, attributes, thing.version));
    actions.push("thing.updated");
  }
  const managed = new Set(Object.values(groups).map((group) => group.name));
  const current = thing?.groups ?? [];
  const remove = current.filter((group) => managed.has(group) && group !== target.name);
  const add = current.includes(target.name) ? [] : [target.name];
  if (add.length > 0 || remove.length > 0) {
    // A group that denies is made whole before a thing enters it, whoever created it: one set up on first need whose
    // policy failed to attach (throttled) was found existing by the retry, and the suspended device's certificate kept
    // its allow (review 133). A few idempotent calls, on a move into a restricted state only.
    if (add.length > 0 && target.policy) await iot.ensureGroup(target);
    await setUp(() => iot.moveThing(device.id, add, remove));
    actions.push(`group.${device.state}`);
  }
  if (device.state === "revoked") {
    for (const certificate of await iot.listCertificates(device.id)) {
      const result = await iot.revokeCertificate(certificate);
      if (result.revoked) actions.push(`certificate.revoked:${certificate}`);
      for (const policy of result.detached) actions.push(`policy.detached:${policy}`);
    }
  }
  return actions;
}

/** How often one run reconciles a device that keeps changing while it does (each change has its own run too). */
const maxReconcileRounds = 3;

/** The consumer's verb: one simroot event about a device, delivered to AWS IoT Core. */
export async function syncDeviceToIot(ports: Ports, iot: IotControl, settings: IotSyncSettings, event: DomainEvent): Promise<string[]> {
  if (event.tenantId !== settings.tenantId) return [];
  if (await delivered(ports, event.tenantId, "iot", event.id)) return [];
  let stored = await readDevice(ports, event.tenantId, event.subject);
  if (!stored) return [];
  const actions: string[] = [];
  // A group move cannot be made conditional: one computed from an earlier state can land after another run's, and no
  // later run would see it (review 115: a reinstatement's slow move left a device suspended since in the active group,
  // out of the deny-all policy). So a run reads the device again after it reconciled, and reconciles again (the thing
  // read afresh) when it changed meanwhile: a change committed after that read has its own run, which reads the thing
  // after this run's writes.
  for (let round = 1; ; round++) {
    actions.push(...(await reconcileThing(iot, settings, stored.device)));
    const again = await readDevice(ports, event.tenantId, event.subject);
    if (!again || again.device.revision === stored.device.revision) break;
    // Still changing at the round limit: not delivered, so the bus gives the event again, and that run reads the device
    // and the thing after this one's writes (review 116: a run that stopped there recorded the delivery, and left a
    // suspended device in the active group).
    if (round === maxReconcileRounds)
      throw new SimrootError(
        "integration.iot_busy",
        "unavailable",
        `Device ${again.device.id} kept changing while its thing was reconciled`,
      );
    stored = again;
  }
  if (actions.length > 0) {
    const ctx = systemContext(event.tenantId, "iot-sync", event.requestId);
    await recordDelivery(ports, ctx, "iot", event, {
      deviceId: stored.device.id,
      thing: stored.device.id,
      state: stored.device.state,
      actions,
    });
  }
  return actions;
}
