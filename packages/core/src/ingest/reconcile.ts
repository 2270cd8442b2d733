/**
 * When a device is registered, the facts that were parked because no device matched them
 * may now apply: every parked fact that names one of its identifiers (any of them, as
 * normalized when parked) is applied again. They are found through the parked facts'
 * identifier index: a registration reads what names the device, not the tenant's whole list.
 */
import { deviceIdentifiers, type Device } from "../device/device.ts";
import { isSimrootError } from "../error.ts";
import type { DomainEvent } from "../event/event.ts";
import type { Ports } from "../ports.ts";
import { applyInPlace } from "./apply-operator-event.ts";
import type { IngestedEvent } from "./ingested.ts";
import { parkedNaming } from "./parked.ts";
import { inFoldOrder, routedAlone } from "./reported.ts";

/**
 * Applies the facts parked for the registered device here, one after the other in the order its fold keeps them
 * (`inFoldOrder`), as the applier applies one device's facts of an entry. Published to the applier, they travelled as
 * the entries of their requests and of each way they named the device (an IMSI, an ICCID), with no bound on them as
 * one device's, applied side by side: the later ones first, and the earlier, more than 32 behind, dropped as stale
 * (review 138: 301 facts parked by IMSI and by ICCID left 91 lease edges). A fact that fails goes on the bus alone,
 * as the applier's do, to be retried or dead-lettered as itself; one another rule routes by its content
 * (`routedAlone`) goes on the bus alone just before it is applied, for that rule. If the invocation ends before it is done, the
 * bus runs it again, and what is still parked is applied then, in the same order (what applied was unparked).
 */
export async function replayParkedFor(ports: Ports, registered: DomainEvent): Promise<number> {
  const device = (registered.data as { device?: Device }).device;
  if (!device) return 0;
  const subjects = deviceIdentifiers(device).map(({ kind, value }) => `${kind}:${value}`);
  if (subjects.length === 0) return 0;
  const events = (await parkedNaming(ports, registered.tenantId, subjects)).map((parked) => parked.event as unknown as IngestedEvent);
  const failed: DomainEvent[] = [];
  for (const index of inFoldOrder(
    events,
    events.map((_, index) => index),
  )) {
    const fact = events[index]!;
    // Review 145: sent to the rule that routes it by its content before it is applied (and unparked). Sent after every
    // fact, a run that ended first (its timeout, a publish refused) left it applied and no longer parked, and the run
    // the bus retried had nothing to send: the switch was never judged. The applier finds it a duplicate, or applies
    // it first, in its place all the same (every fact before it applied).
    if (routedAlone(fact)) await ports.publisher.publish([fact], { alone: true });
    // In its place while the store throttles it, as the applier does (review 145).
    const result = await applyInPlace(ports, fact);
    if ("error" in result) {
      const { error } = result;
      failed.push(fact);
      console.warn(
        JSON.stringify({
          level: "warn",
          component: "parked-reconciler",
          message: "parked fact failed; requeued alone",
          eventId: fact.id,
          type: fact.type,
          tenantId: fact.tenantId,
          code: isSimrootError(error) ? error.code : "internal.unexpected",
          error: error instanceof Error ? error.message : String(error),
        }),
      );
    }
  }
  // One routed by its content that failed is on the bus already.
  const requeued = failed.filter((fact) => !routedAlone(fact));
  if (requeued.length > 0) await ports.publisher.publish(requeued, { alone: true });
  if (failed.length > 0) ports.metrics?.add("FactsRequeued", failed.length);
  return events.length;
}
