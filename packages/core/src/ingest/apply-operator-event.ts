/**
 * The applier: what an operator source reported becomes identity state. Every accepted
 * fact ends in exactly one of: applied, duplicate, stale (known, outdated or changing
 * nothing), or parked with a reason. Malformed details are refused (the bus dead-letters them).
 */
import { maxDeviceIdLength, maxTimestampLength, normalizedEventSchema, type NormalizedEvent } from "../catalogue/catalogue.ts";
import type { RequestContext } from "../context.ts";
import type { Device } from "../device/device.ts";
import { readDevice, recentDevice, resolveDevice } from "../device/store.ts";
import { SimrootError, isSimrootError } from "../error.ts";
import { domainEvent, type DomainEvent } from "../event/event.ts";
import { applyFact, type FactOutcome } from "../identity/apply-fact.ts";
import { toFact } from "../identity/fact.ts";
import { storeThrottled } from "../ledger/ledger.ts";
import type { Outcome } from "../outcome.ts";
import type { Ports } from "../ports.ts";
import { describeRef, type IngestedEvent } from "./ingested.ts";
import { park, unpark } from "./parked.ts";
import { devicesOf, factsReportedType, inFoldOrder, reportedFacts } from "./reported.ts";

export interface OperatorEventResult {
  readonly outcome: FactOutcome | "parked";
  readonly deviceId?: string;
  readonly changes: readonly string[];
}

const recordedRetentionSeconds = 7 * 24 * 60 * 60;

export async function applyOperatorEvent(ports: Ports, reported: DomainEvent): Promise<Outcome<OperatorEventResult>> {
  const result = await settle(ports, reported);
  ports.metrics?.add("FactsSettled", 1);
  if (result.value.outcome === "applied") ports.metrics?.add("FactsApplied", 1);
  return result;
}

/** What became of one fact of a bus entry: its outcome, or the failure it went back on the bus alone with. */
export interface ReportedResult {
  readonly fact: DomainEvent;
  readonly outcome?: Outcome<OperatorEventResult>;
  readonly error?: unknown;
}

/**
 * The applier's bus entry: one fact, or the facts of one request packed together (`reported.ts`). The facts of one
 * device (as the request names it) are applied one after the other in time order (`inFoldOrder`), the devices' side
 * by side, so that their commits share the shards' transactions and a sequencing run. Every fact is tried. A packed fact that failed goes back on the bus
 * alone, as it would have travelled had it come alone: its retries, its dead letter (under its own id, the one
 * ingestion answered with) and a redrive are its own, and its entry's facts that applied are never applied again
 * (their duplicate checks do not last for ever). The entry fails, and the bus retries it whole, only when that
 * publish fails. A lone fact fails as it always did.
 */
export async function applyReported(ports: Ports, entry: DomainEvent): Promise<ReportedResult[]> {
  if (entry.type !== factsReportedType) return [{ fact: entry, outcome: await applyOperatorEvent(ports, entry) }];
  const facts = reportedFacts(entry);
  const byDevice = new Map<string, number[]>();
  devicesOf(facts).forEach((device, index) => {
    byDevice.set(device, [...(byDevice.get(device) ?? []), index]);
  });
  const results: ReportedResult[] = new Array(facts.length);
  await Promise.all(
    [...byDevice.values()].map(async (indexes) => {
      for (const index of inFoldOrder(facts, indexes)) results[index] = await applyInPlace(ports, facts[index]!);
    }),
  );
  // In one publish, unpacked: if it fails, nothing of it was accepted, and the bus retries the entry whole.
  const failed = results.filter((result) => "error" in result);
  if (failed.length > 0) {
    await ports.publisher.publish(
      failed.map((result) => result.fact),
      { alone: true },
    );
    ports.metrics?.add("FactsRequeued", failed.length);
    // The invocation succeeds: each failure is told here, where its entry's consumer does not see it.
    for (const { fact, error } of failed) {
      console.warn(
        JSON.stringify({
          level: "warn",
          component: "applier",
          message: "packed fact failed; requeued alone",
          entryId: entry.id,
          eventId: fact.id,
          type: fact.type,
          tenantId: fact.tenantId,
          code: isSimrootError(error) ? error.code : "internal.unexpected",
          error: error instanceof Error ? error.message : String(error),
        }),
      );
    }
  }
  return results;
}

/**
 * How long one of a device's facts the store throttles is tried again in place, its device's later facts waiting, before
 * it goes back on the bus alone: the contention budget a change had before the API's was cut to 8 s (review 144). Sent
 * back after 8 s, it came back after the device's later facts of its entry were applied, more than 32 behind, and was
 * dropped as stale (review 145: 2 of 111 lease edges lost to a 10 s throttle). In Lambda, an entry not done before the
 * function's time is received again whole, in order (functions lib/consumer.ts).
 */
export const throttledInPlaceMs = 60_000;

/** Applies one of a device's facts in its place, trying again while the store throttles it (`throttledInPlaceMs`). */
export async function applyInPlace(ports: Ports, fact: DomainEvent): Promise<ReportedResult> {
  const since = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return { fact, outcome: await applyOperatorEvent(ports, fact) };
    } catch (error) {
      if (!storeThrottled(error) || Date.now() - since > throttledInPlaceMs) return { fact, error };
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2_000, 100 * 2 ** attempt)));
    }
  }
}

async function settle(ports: Ports, reported: DomainEvent): Promise<Outcome<OperatorEventResult>> {
  const raw = withTimeCut(reported.data?.event);
  const longId = (raw as { device?: { deviceId?: unknown } } | undefined)?.device?.deviceId;
  const tooLong = typeof longId === "string" && longId.length > maxDeviceIdLength ? longId.length : undefined;
  const checked = tooLong === undefined ? raw : { ...(raw as object), device: { ...(raw as { device: object }).device, deviceId: "dev_" } };
  if (!normalizedEventSchema.safeParse(checked).success || typeof reported.data.sourceId !== "string") {
    throw new SimrootError("ingest.malformed_fact", "input", `Event ${reported.id} is not a normalized fact`);
  }
  const ingested = (raw === reported.data.event ? reported : { ...reported, data: { ...reported.data, event: raw } }) as IngestedEvent;
  const event = ingested.data.event;
  const ctx: RequestContext = { tenantId: ingested.tenantId, actor: ingested.actor, requestId: ingested.requestId };
  const parkFor = async (reason: string): Promise<Outcome<OperatorEventResult>> => {
    await park(ports, ingested, reason);
    return { value: { outcome: "parked", changes: [] }, events: [] };
  };

  // Accepted before review 83 bounded device ids to 64 characters: it names no device (simroot's are 30), kept to be seen.
  if (tooLong !== undefined) return parkFor(`a device id of ${tooLong} characters names no device (simroot's have 30)`);
  let deviceId = await resolveDevice(ports, ctx.tenantId, event.device);
  // A cached alias may name a device revoked since (its identifiers were released): ask the store.
  let fresh = false;
  // An unhandled event writes no device item, so no conflict would tell a stale cached copy: it reads the store's.
  const current = event.type === "source.unhandled" ? readDevice : recentDevice;
  if (deviceId && !event.device.deviceId && (await current(ports, ctx.tenantId, deviceId))?.device.state === "revoked") {
    deviceId = await resolveDevice(ports, ctx.tenantId, event.device, true);
    fresh = true;
  }
  if (!deviceId) return parkFor(`no device in this tenant matches ${describeRef(event.device)}`);
  const cause = {
    eventId: ingested.id,
    sourceId: ingested.data.sourceId,
    sourceType: event.sourceType,
    dedupeKey: event.dedupeKey,
    ...(event.reportedAt === undefined ? {} : { reportedAt: event.reportedAt, clampedTo: event.occurredAt }),
  };
  // Judged on the device the fold reads, which after a conflict is the store's: this instance's cached copy of a device
  // revoked through another instance says active, and its cached aliases name it still (review 97: an operator's
  // suspension of the SIM registered again was folded into the revoked device).
  const judged = (device: Device) => {
    if (!fresh && !event.device.deviceId && device.state === "revoked")
      throw new SimrootError("ingest.resolve_again", "conflict", `device ${device.id} is revoked: its identifiers may name another`);
    return otherEuicc(device, event);
  };

  let result: Outcome<OperatorEventResult>;
  for (;;) {
    try {
      result =
        event.type === "source.unhandled"
          ? await recordUnhandled(ports, ctx, deviceId, ingested, cause)
          : await applyFact(ports, ctx, deviceId, toFact(event, ingested.data.sourceId), cause, judged);
      break;
    } catch (error) {
      if (isSimrootError(error) && error.code === "ingest.resolve_again" && !fresh) {
        fresh = true;
        const again = await resolveDevice(ports, ctx.tenantId, event.device, true);
        if (!again) return parkFor(`no device in this tenant matches ${describeRef(event.device)}`);
        deviceId = again;
        continue;
      }
      if (isSimrootError(error) && error.code === "device.not_found")
        return parkFor(`device ${deviceId} is not in this tenant (never registered here, or removed)`);
      if (isSimrootError(error) && error.code === "ingest.not_its_device") return parkFor(error.message);
      throw error;
    }
  }
  await unpark(ports, ctx.tenantId, ingested.id);
  return result;
}

/**
 * Why `device` is not the eUICC the fact names (its EID: a profile fact's `data.eid`, else its reference's), if it is
 * not: the device is known to be another's, by the EID it was registered with, else by the EIDs its profiles were
 * reported with. A fact naming an EID the tenant does not know resolves by its ICCID: an eIM's notification signed by
 * another eUICC (genuine, of the same manufacturer) would otherwise delete or disable a profile of a device whose
 * eUICC never reported it (review 95). Judged on the device the fold reads, so on the store's copy after a conflict
 * (review 96: a cached copy from before the device's eUICC first reported let the other through). Parked, the fact is
 * applied to that eUICC's device once one is registered with its EID.
 */
function otherEuicc(device: Device, event: NormalizedEvent): string | undefined {
  const named = (event.type.startsWith("profile.") ? (event.data as { eid?: string }).eid : undefined) ?? event.device.eid;
  if (named === undefined) return undefined;
  if (event.device.eid !== undefined && event.device.eid !== named)
    return `it names two EIDs: ${event.device.eid} for its device, ${named} in its data`;
  // A failed install names an EID no profile reached (a mistyped one, review 123): it makes no eUICC the device's.
  const known = device.eid
    ? [device.eid]
    : [...new Set(Object.values(device.identity.profiles).flatMap((profile) => (profile.state === "failed" ? [] : [profile.eid])))];
  if (known.length === 0 || known.includes(named)) return undefined;
  return `the EID ${named} it names is not device ${device.id}'s (${known.join(", ")})`;
}

/**
 * A fact as ingestion accepted it before review 83 bounded a stated time to `maxTimestampLength` characters: more digits
 * of a second than nanoseconds are cut (the time is the same to the nanosecond, its offset kept). Refused as malformed,
 * such a fact on the bus or parked was dead-lettered, never applied, though ingestion had answered 202 (review 89).
 */
function withTimeCut(event: unknown): unknown {
  const occurredAt = (event as { occurredAt?: unknown } | undefined)?.occurredAt;
  if (typeof occurredAt !== "string" || occurredAt.length <= maxTimestampLength) return event;
  const cut = /^([^.]{19}\.\d{9})\d+(Z|[+-]\d\d:\d\d)$/i.exec(occurredAt);
  return cut ? { ...(event as object), occurredAt: `${cut[1]}${cut[2]}` } : event;
}

/** An event simroot does not act on is still recorded: audited and on the device's timeline, once. */
async function recordUnhandled(
  ports: Ports,
  ctx: RequestContext,
  deviceId: string,
  ingested: IngestedEvent,
  cause: Record<string, unknown>,
): Promise<Outcome<OperatorEventResult>> {
  const now = ports.now();
  const event: DomainEvent = domainEvent(ctx, "source.unhandled", deviceId, { ...ingested.data.event.data, deviceId, cause }, now);
  try {
    await ports.ledger.commit({
      tenantId: ctx.tenantId,
      events: [event],
      writes: [
        {
          Put: {
            TableName: ports.tables.control,
            Item: {
              pk: `T#${ctx.tenantId}#recorded#${String(cause.sourceId)}`,
              sk: String(cause.dedupeKey),
              expiresAt: Math.floor(now.getTime() / 1000) + recordedRetentionSeconds,
            },
            ConditionExpression: "attribute_not_exists(pk)",
          },
        },
      ],
      onConditionFailed: () => new SimrootError("ingest.duplicate", "conflict", "already recorded"),
    });
  } catch (error) {
    if (isSimrootError(error) && error.code === "ingest.duplicate")
      return { value: { outcome: "duplicate", deviceId, changes: [] }, events: [] };
    throw error;
  }
  return { value: { outcome: "applied", deviceId, changes: ["source.unhandled"] }, events: [event] };
}
