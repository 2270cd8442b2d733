/**
 * When a device is registered, the facts that were parked because no device matched them
 * may now apply: send every parked fact that names one of its identifiers (any of them, as
 * normalized when parked) to the applier again. They are found through the parked facts'
 * identifier index: a registration reads what names the device, not the tenant's whole list.
 */
import { deviceIdentifiers, type Device } from "../device/device.ts";
import type { DomainEvent } from "../event/event.ts";
import type { Ports } from "../ports.ts";
import type { IngestedEvent } from "./ingested.ts";
import { parkedNaming } from "./parked.ts";

export async function replayParkedFor(ports: Ports, registered: DomainEvent): Promise<number> {
  const device = (registered.data as { device?: Device }).device;
  if (!device) return 0;
  const subjects = deviceIdentifiers(device).map(({ kind, value }) => `${kind}:${value}`);
  if (subjects.length === 0) return 0;
  const events = (await parkedNaming(ports, registered.tenantId, subjects)).map((parked) => parked.event as unknown as IngestedEvent);
  if (events.length > 0) await ports.publisher.publish(events);
  return events.length;
}
