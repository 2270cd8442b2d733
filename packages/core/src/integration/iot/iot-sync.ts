/**
 * Brings a device's AWS IoT thing in line with simroot: its attributes (SIM identity, state,
 * labels), its state's thing group, and on revocation its certificates REVOKED with their
 * policies detached (IoT cannot un-revoke a certificate: revocation stays terminal, as in
 * simroot). It reconciles to the device's current state, not to the event, so a late, repeated
 * or out-of-order event converges to the same thing; reinstating moves the thing back to the
 * active group, which lifts the deny policies (the reversible part). Each delivery that changed
 * something is audited once, though its record's commit fails: what a run is about to change is written down first
 * (`intendDelivery`), and the retry, which finds the thing in line, records that.
 */
import { systemContext } from "../../context.ts";
import type { Device } from "../../device/device.ts";
import { readDevice } from "../../device/store.ts";
import { SimrootError, isSimrootError } from "../../error.ts";
import type { DomainEvent } from "../../event/event.ts";
import type { Ports } from "../../ports.ts";
import { abandonDelivery, intendDelivery, readDelivery, recordDelivery } from "../delivery.ts";
import { thingAttributes } from "./iot-attributes.ts";
import { stateGroups, thingTypeName } from "./iot-groups.ts";
import { IotMissingResource, IotThingChanged, type IotControl } from "./iot-port.ts";

export interface IotSyncSettings {
  readonly tenantId: string;
  readonly prefix: string;
}

const sameRecord = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([key, value]) => b[key] === value);

/**
 * Reconciles the thing of one device; returns what it changed (empty when already in line). `intend` is given what it is
 * about to change, before the first change (not called when there is none to make).
 */
export async function reconcileThing(
  iot: IotControl,
  settings: IotSyncSettings,
  device: Device,
  intend: (planned: readonly string[]) => Promise<void> = async () => {},
): Promise<string[]> {
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
  const create = !thing;
  const update = thing !== undefined && (thing.thingTypeName !== type || !sameRecord(thing.attributes, attributes));
  const managed = new Set(Object.values(groups).map((group) => group.name));
  const current = thing?.groups ?? [];
  const remove = current.filter((group) => managed.has(group) && group !== target.name);
  const add = current.includes(target.name) ? [] : [target.name];
  // A thing created now has no certificate yet; a revoked one's are revoked again (idempotent) on every delivery.
  const certificates = device.state === "revoked" && thing ? await iot.listCertificates(device.id) : [];
  const planned = [
    ...(create ? ["thing.created"] : update ? ["thing.updated"] : []),
    ...(add.length > 0 || remove.length > 0 ? [`group.${device.state}`] : []),
    ...certificates.map((certificate) => `certificate.revoked:${certificate}`),
  ];
  if (planned.length === 0) return actions;
  await intend(planned);
  if (create) {
    await setUp(() => iot.createThing(device.id, type, attributes));
    actions.push("thing.created");
  } else if (update) {
    await setUp(() => iot.updateThing(device.id, type, attributes, thing.version));
    actions.push("thing.updated");
  }
  if (add.length > 0 || remove.length > 0) {
    // A group that denies is made whole before a thing enters it, whoever created it: one set up on first need whose
    // policy failed to attach (throttled) was found existing by the retry, and the suspended device's certificate kept
    // its allow (review 133). A few idempotent calls, on a move into a restricted state only.
    if (add.length > 0 && target.policy) await iot.ensureGroup(target);
    await setUp(() => iot.moveThing(device.id, add, remove));
    actions.push(`group.${device.state}`);
  }
  for (const certificate of certificates) {
    const result = await iot.revokeCertificate(certificate);
    if (result.revoked) actions.push(`certificate.revoked:${certificate}`);
    for (const policy of result.detached) actions.push(`policy.detached:${policy}`);
  }
  return actions;
}

/** How often one run reconciles a device that keeps changing while it does (each change has its own run too). */
const maxReconcileRounds = 3;

/** The consumer's verb: one simroot event about a device, delivered to AWS IoT Core; returns what this run changed. */
export async function syncDeviceToIot(ports: Ports, iot: IotControl, settings: IotSyncSettings, event: DomainEvent): Promise<string[]> {
  if (event.tenantId !== settings.tenantId) return [];
  const delivery = await readDelivery(ports, event.tenantId, "iot", event.id);
  if (delivery.delivered) return [];
  let actions: string[];
  let stored: Awaited<ReturnType<typeof readDevice>>;
  let planned: string[];
  try {
    ({ actions, stored, planned } = await reconcile(ports, iot, settings, event));
  } catch (error) {
    // A duplicate delivery's run recorded this event while this one planned: nothing is left to do.
    if (isSimrootError(error) && error.code === "integration.already_delivered") return [];
    throw error;
  }
  // What an earlier attempt set out to change, whose record failed to commit: the thing carries it now, and this run
  // may have found nothing left to do (review 133). Each action is recorded once.
  const recorded = [...new Set([...confirmedPlans(delivery.planned, stored?.device), ...actions])];
  if (recorded.length === 0 && planned.length > 0) await abandonDelivery(ports, event.tenantId, "iot", event.id, planned);
  if (recorded.length > 0) {
    const ctx = systemContext(event.tenantId, "iot-sync", event.requestId);
    await recordDelivery(ports, ctx, "iot", event, {
      deviceId: event.subject,
      thing: event.subject,
      ...(stored ? { state: stored.device.state } : {}),
      actions: recorded,
      ...(delivery.planned.length > 0 ? { planned: delivery.planned } : {}),
    });
  }
  return actions;
}

/**
 * What an earlier attempt planned that the thing shows done now. A plan is written before acting, and that attempt may
 * have failed before acting (IoT throttled the move): a group move is done only if the thing is in that group now, which
 * this run left it in, its device's state's (review 141: a quarantine's move, throttled, then the device reinstated, was
 * recorded by the quarantine's redelivery as made, and the audit trail said the thing quarantined; it never was). The
 * record still lists the whole plan apart (`planned`).
 */
const confirmedPlans = (planned: readonly string[], device: Device | undefined) =>
  planned.filter((entry) => !entry.startsWith("group.") || (device !== undefined && entry === `group.${device.state}`));

/** Reconciles the event's device until it holds still; what it changed, the device as last read, and what it planned. */
async function reconcile(ports: Ports, iot: IotControl, settings: IotSyncSettings, event: DomainEvent) {
  let stored = await readDevice(ports, event.tenantId, event.subject);
  const actions: string[] = [];
  const planned: string[] = [];
  if (!stored) return { actions, stored, planned };
  const intend = async (plan: readonly string[]) => {
    await intendDelivery(ports, event.tenantId, "iot", event.id, plan);
    planned.push(...plan);
  };
  // A group move cannot be made conditional: one computed from an earlier state can land after another run's, and no
  // later run would see it (review 115: a reinstatement's slow move left a device suspended since in the active group,
  // out of the deny-all policy). So a run reads the device again after it reconciled, and reconciles again (the thing
  // read afresh) when it changed meanwhile: a change committed after that read has its own run, which reads the thing
  // after this run's writes.
  for (let round = 1; ; round++) {
    let raced = false;
    try {
      actions.push(...(await reconcileThing(iot, settings, stored.device, intend)));
    } catch (error) {
      // Another run (a concurrent event of the device) wrote the thing between this one's read and its write: this run
      // reads both again, rather than failing to the bus's retry, minutes later (the plan written before acting widens
      // that window, by one store write).
      if (!(error instanceof IotThingChanged) || round === maxReconcileRounds) throw error;
      raced = true;
    }
    const again = await readDevice(ports, event.tenantId, event.subject);
    if (!again || (!raced && again.device.revision === stored.device.revision)) break;
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
  return { actions, stored, planned };
}
