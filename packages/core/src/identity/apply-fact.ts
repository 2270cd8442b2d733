/**
 * Applies one fact to one device: read, fold, diff, commit. The device item is written
 * under an optimistic condition on its revision, with the audit records, feed entries and
 * IP bindings of the change in the same transaction; a concurrent writer makes it re-read
 * and fold again. Safe to repeat: a known fact is a duplicate, an outdated one is stale.
 */
import { tenantSettings } from "../access/tenant-settings.ts";
import { compileSelector } from "../policy/selector.ts";
import type { RequestContext } from "../context.ts";
import { enforcementView, type Device } from "../device/device.ts";
import { readBindings } from "../device/bindings.ts";
import { bindingKey, legacyBindingKey, revokedKey, revokedListKey } from "../device/keys.ts";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { deviceIdentifiers } from "../device/device.ts";
import { iccidOtherSpelling, type IdentifierKind } from "../device/identifiers.ts";
import { aliasKey, euiccKey } from "../device/keys.ts";
import { cachedDevice, deviceItem, forgetAliases, forgetDevice, imeiAlias, readDevice, rememberDevice } from "../device/store.ts";
import { SimrootError, isSimrootError } from "../error.ts";
import { domainEvent, type DomainEvent } from "../event/event.ts";
import type { FeedChange, LeaseEdge } from "../ledger/change.ts";
import type { Ports } from "../ports.ts";
import { writeTransaction, type TransactItem } from "../store/transaction.ts";
import { bindingsOf, diffStates } from "./diff.ts";
import type { Fact } from "./fact.ts";
import { absorbedSessionEnd, distinctEdges, leaseChanges, shortenedSessions } from "./lease.ts";
import { admission, currentState, keyedByContent, remember } from "./fold.ts";
import type { FoldSettings, IdentityState } from "./identity-state.ts";

export type FactOutcome = "applied" | "duplicate" | "stale";

export interface AppliedFact {
  readonly outcome: FactOutcome;
  readonly deviceId: string;
  /** The catalogue events the fact caused (empty unless applied). */
  readonly changes: readonly string[];
}

const maxAttempts = 12;

export async function foldSettingsOf(ports: Ports, device: Device): Promise<FoldSettings> {
  const settings = await tenantSettings(ports, device.tenantId);
  const rule = settings.countryRules.find((candidate) => compileSelector(candidate.selector)(device.labels));
  return {
    imeiLock: device.imeiLock ?? settings.imeiLock,
    allowedCountries: device.allowedCountries ?? rule?.allowedCountries ?? settings.allowedCountries,
  };
}

/**
 * Folds `fact` into the device's history and commits what changed. `refusal`: why the fact is not the device's, judged
 * on the device each attempt reads (a cached copy first, then, after a conflict, the store's): thrown as
 * `ingest.not_its_device` with that reason.
 */
export async function applyFact(
  ports: Ports,
  ctx: RequestContext,
  deviceId: string,
  fact: Fact,
  cause: Record<string, unknown>,
  refusal?: (device: Device) => string | undefined,
): Promise<{ value: AppliedFact; events: DomainEvent[] }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptFact(ports, ctx, deviceId, fact, cause, refusal, false);
    } catch (error) {
      forgetDevice(ports, ctx.tenantId, deviceId);
      if (!isSimrootError(error) || attempt >= maxAttempts) throw error;
      // A concurrent writer of the device or of one of its addresses: fold again from what the store holds now.
      if (error.code !== "store.conflict") throw error;
      // Writers in other instances on the same device: back off (capped, jittered) before folding again.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** attempt)));
    }
  }
}

async function attemptFact(
  ports: Ports,
  ctx: RequestContext,
  deviceId: string,
  reported: Fact,
  cause: Record<string, unknown>,
  refusal: ((device: Device) => string | undefined) | undefined,
  fromStore: boolean,
): Promise<{ value: AppliedFact; events: DomainEvent[] }> {
  const cached = fromStore ? undefined : cachedDevice(ports, ctx.tenantId, deviceId);
  const stored = cached ?? (await readDevice(ports, ctx.tenantId, deviceId));
  if (!stored) throw new SimrootError("device.not_found", "not_found", `No device ${deviceId}`);
  const { device, history } = stored;
  const refused = refusal?.(device);
  if (refused !== undefined) throw new SimrootError("ingest.not_its_device", "conflict", refused);
  const fact = keyedByContent(history, reported);
  const settings = await foldSettingsOf(ports, device);
  const admitted = admission(history, fact, settings);
  if (admitted === "duplicate" || admitted === "stale") {
    // Nothing is written, so no conflict would tell a stale cached copy: a device revoked through another instance, its
    // SIM registered again, would keep the new device's fact (review 99). The store's copy confirms before it is dropped.
    if (cached && refusal) return attemptFact(ports, ctx, deviceId, reported, cause, refusal, true);
    return { value: { outcome: admitted, deviceId, changes: [] }, events: [] };
  }

  const nextHistory = remember(history, fact, settings);
  const before = device.identity;
  const after = currentState(nextHistory, settings);
  const changes = diffStates(before, after, settings);
  const now = ports.now();
  const next: Device = { ...device, state: after.state, identity: after, revision: device.revision + 1, updatedAt: now.toISOString() };
  const putDevice: TransactItem = {
    Put: {
      TableName: ports.tables.identity,
      Item: deviceItem(next, nextHistory),
      ConditionExpression: "revision = :revision",
      ExpressionAttributeValues: { ":revision": device.revision },
    },
  };
  const conflict = () => new SimrootError("store.conflict", "conflict", "The device changed concurrently");
  const absorbed = absorbedSession(ctx, device, fact, after, nextHistory.facts, cause, now);
  const shortened = shortenedSessions(history.facts, nextHistory.facts, fact).map((session) =>
    recordedSession(ctx, device, session.opening, session.until, cause, now),
  );
  if (changes.length === 0 && !absorbed && shortened.length === 0) {
    // Remembered (so every arrival order folds alike) but visible to no one: no audit, no feed.
    await writeTransaction(ports.db, [putDevice], conflict);
    rememberDevice(ports, { device: next, history: nextHistory });
    return { value: { outcome: "stale" as const, deviceId, changes: [] }, events: [] };
  }

  const events = [
    // `revision`: the device's once the change is applied, which orders a device's events however they are delivered
    // (automation's label actions follow it: review 115).
    ...changes.map((change) => domainEvent(ctx, change.type, deviceId, { ...change.data, deviceId, revision: next.revision, cause }, now)),
    ...(absorbed ? [absorbed.event] : []),
    ...shortened.map((session) => session.event),
  ];
  const leases = distinctEdges([
    ...leaseChanges(before, after, fact.at),
    ...(absorbed?.leases ?? []),
    // Only their ends: their starts were recorded when they opened.
    ...shortened.flatMap((session) => session.leases.filter((edge) => edge.edge === "end")),
  ]);
  const revoking = next.state === "revoked" && device.state !== "revoked";
  const bindings = await bindingChanges(
    ports,
    device,
    bindingsOf(before),
    bindingsOf(after),
    now.toISOString(),
    revoking,
    sessionTimes(after),
  );
  // After the bindings, so that theirs are the write indices `positioned` names.
  // A revoked device's view names the addresses it released: a PEP that learns the revocation from a snapshot (which
  // lists no released binding) still knows them as the revoked device's (no break-glass for it while its feed is stale).
  const view = revoking ? revokedView(next, bindings.feed) : enforcementView(next);
  const revocation = revoking ? [revocationMarker(ports, next, view, now.toISOString())] : [];
  const eidsBefore = new Set(profileEids(device, before.profiles));
  const aliases = revoking
    ? [...(await releasedAliases(ports, next)), ...(await releasedEuiccs(ports, next))]
    : after.state === "revoked"
      ? []
      : [
          ...(await followedImei(ports, device, before, after)),
          ...(await followedProfiles(ports, device, before, after)),
          ...(await markedEuiccs(
            ports,
            device,
            profileEids(device, after.profiles).filter((eid) => !eidsBefore.has(eid)),
          )),
        ];
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    writes: [putDevice, ...bindings.writes, ...revocation, ...aliases, ...bindings.markers],
    events,
    leases,
    feed: [{ kind: "device", key: deviceId, value: view }, ...bindings.feed],
    // The bindings' items name the record of this change (cut.ts): they follow the device's item.
    positioned: bindings.writes.map((_, index) => index + 1),
    onConditionFailed: conflict,
  });
  rememberDevice(ports, { device: next, history: nextHistory });
  if (revoking) forgetAliases(ports, next.tenantId, revokedAliasesOf(next));
  else forgetAliases(ports, next.tenantId, releasedProfiles(before, after));
  return { value: { outcome: "applied" as const, deviceId, changes: changes.map((change) => change.type) }, events };
}

/**
 * A session the fold absorbed (its end, or a newer session, arrived first) existed all the
 * same: it is recorded on the timeline and in the audit trail, with its lease of the address.
 */
function absorbedSession(
  ctx: RequestContext,
  device: Device,
  fact: Fact,
  after: IdentityState,
  facts: readonly Fact[],
  cause: Record<string, unknown>,
  now: Date,
) {
  if (fact.type !== "sim.attached" && fact.type !== "bearer.switched") return undefined;
  if (after.state === "revoked" || after.sessions[fact.data.bearer]?.since === fact.at) return undefined;
  return recordedSession(ctx, device, fact, absorbedSessionEnd(facts, fact), cause, now);
}

/** A session as the timeline and the lease history record it: opened by `fact`, ended at `until` if it ended. */
function recordedSession(
  ctx: RequestContext,
  device: Device,
  fact: Fact & { type: "sim.attached" | "bearer.switched" },
  until: string | undefined,
  cause: Record<string, unknown>,
  now: Date,
) {
  const { from: _from, imei: _imei, ...session } = fact.data as typeof fact.data & { from?: string; imei?: string };
  const addresses = [session.ipv4, session.ipv6].filter((address): address is string => address !== undefined);
  const leases = addresses.flatMap((address): LeaseEdge[] => [
    { address, at: fact.at, edge: "start", bearer: session.bearer },
    ...(until ? [{ address, at: until, edge: "end" as const, bearer: session.bearer }] : []),
  ]);
  const event = domainEvent(
    ctx,
    "sim.session-recorded",
    device.id,
    { ...session, since: fact.at, ...(until ? { until } : {}), deviceId: device.id, cause },
    now,
  );
  return { event, leases };
}

type Alias = { kind: IdentifierKind; value: string };

/** An ICCID as aliases are kept: without the F padding an eUICC may report. */
const iccidAlias = (iccid: string) => iccid.replace(/F$/i, "");

/** The profile ICCIDs that no longer name the device (deleted, or failed on a new attempt): this process forgets them. */
const releasedProfiles = (before: IdentityState, after: IdentityState): Alias[] => {
  const following = new Set(profileIccids(after));
  return profileIccids(before).flatMap((value) => (following.has(value) ? [] : [{ kind: "iccid" as const, value }]));
};

/** The ICCIDs of the profiles the device's eIM reported, but failed installs and deleted profiles (`followedProfiles`). */
const profileIccids = (state: IdentityState) =>
  Object.values(state.profiles).flatMap((profile) =>
    profile.state === "failed" || profile.state === "deleted" ? [] : [iccidAlias(profile.iccid)],
  );

/**
 * The identifiers a device holds: those it was registered with, the IMEI it was last seen in and its eUICC's profiles'
 * ICCIDs (the last two only when no other device held them first: `releasedAliases` checks).
 */
const aliasesOf = (device: Device): Alias[] => [
  ...deviceIdentifiers(device),
  ...(device.identity.imei ? [{ kind: "imei" as const, value: imeiAlias(device.identity.imei) }] : []),
  ...profileIccids(device.identity).map((value) => ({ kind: "iccid" as const, value })),
];

/**
 * What a revocation releases: the aliases the device holds, and the ICCIDs of every profile it reported, deleted or
 * failed too (a profile deleted before its ICCID was released on deletion kept its alias; only those the device holds
 * are released, `releasedAliases` reads).
 */
const revokedAliasesOf = (device: Device): Alias[] => [
  ...aliasesOf(device),
  ...Object.values(device.identity.profiles).map((profile) => ({ kind: "iccid" as const, value: iccidAlias(profile.iccid) })),
];

/** An alias removed only if it is (still) this device's; a missing one is fine. */
const releaseAlias = (ports: Ports, device: Device, { kind, value }: Alias): TransactItem => ({
  Delete: {
    TableName: ports.tables.identity,
    Key: aliasKey(device.tenantId, kind, value),
    ConditionExpression: "attribute_not_exists(pk) OR deviceId = :device",
    ExpressionAttributeValues: { ":device": device.id },
  },
});

/**
 * The EIDs the profiles of a device registered without one were reported on: its eUICC's. Each is marked the device's
 * eUICC (`euiccKey`), which a registration with that EID is refused on (review 119: the same eUICC was registered as a
 * second device, and the eIM's next notifications, resolved by EID, went to that one). Not an alias: a report naming
 * the EID and a registered ICCID still resolves by the ICCID. A failed install marks nothing (a download that failed may
 * name a mistyped EID: review 120), unless `withFailed`.
 */
const profileEids = (device: Device, profiles: IdentityState["profiles"], withFailed = false): string[] =>
  device.eid
    ? []
    : [...new Set(Object.values(profiles).flatMap((profile) => (withFailed || profile.state !== "failed" ? [profile.eid] : [])))];

/** The writes that mark `eids` the device's eUICC, for those no device was marked with. */
async function markedEuiccs(ports: Ports, device: Device, eids: readonly string[]): Promise<TransactItem[]> {
  const writes: TransactItem[] = [];
  for (const eid of eids) {
    const key = euiccKey(device.tenantId, eid);
    const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.identity, Key: key, ConsistentRead: true }));
    if (Item) continue;
    writes.push({
      Put: { TableName: ports.tables.identity, Item: { ...key, deviceId: device.id }, ConditionExpression: "attribute_not_exists(pk)" },
    });
  }
  return writes;
}

/** A revocation removes the device's eUICC marks, so the eUICC can be registered again. */
async function releasedEuiccs(ports: Ports, device: Device): Promise<TransactItem[]> {
  const writes: TransactItem[] = [];
  // Every profile's EID, failed ones too: a mark written before its profile failed is released with the others.
  for (const eid of profileEids(device, device.identity.profiles, true)) {
    const key = euiccKey(device.tenantId, eid);
    const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.identity, Key: key, ConsistentRead: true }));
    if (Item?.deviceId !== device.id) continue;
    writes.push({
      Delete: {
        TableName: ports.tables.identity,
        Key: key,
        ConditionExpression: "attribute_not_exists(pk) OR deviceId = :device",
        ExpressionAttributeValues: { ":device": device.id },
      },
    });
  }
  return writes;
}

/**
 * A revoked SIM's identifiers are released (the device, its facts and its audit trail stay):
 * the SIM or the equipment can be registered again.
 */
async function releasedAliases(ports: Ports, device: Device): Promise<TransactItem[]> {
  const unique = new Map(revokedAliasesOf(device).map((alias) => [`${alias.kind}:${alias.value}`, alias]));
  // The IMEI alias follows the equipment only when no other device holds it (`followedImei`): one held by another
  // device is that device's, not released (its release, conditional on being this device's, failed every revocation).
  const registered = new Set(device.iccids);
  for (const [key, alias] of unique) {
    if (alias.kind !== "imei" && !(alias.kind === "iccid" && !registered.has(alias.value))) continue;
    const { Item } = await ports.db.send(
      new GetCommand({ TableName: ports.tables.identity, Key: aliasKey(device.tenantId, alias.kind, alias.value), ConsistentRead: true }),
    );
    // Another device's, or never this device's (another held it when it was followed): no release, no tombstone (a
    // tombstone of an alias the device never held took the late reports of the device that did).
    if (Item?.deviceId !== device.id) unique.delete(key);
  }
  // A tombstone per identifier: a late report still reaches the revoked device until the SIM is registered again.
  return [...unique.values()].flatMap((alias) => [
    releaseAlias(ports, device, alias),
    {
      Put: {
        TableName: ports.tables.identity,
        Item: { pk: aliasKey(device.tenantId, alias.kind, alias.value).pk, sk: `released#${device.id}`, deviceId: device.id },
      },
    },
  ]);
}

/**
 * The IMEI alias follows the equipment the SIM is in: the new IMEI resolves to the device
 * (unless another device holds it: then it stays that device's), the old one is released.
 */
async function followedImei(ports: Ports, device: Device, before: IdentityState, after: IdentityState): Promise<TransactItem[]> {
  if (before.imei === after.imei) return [];
  const writes: TransactItem[] = [];
  const previous = before.imei ?? device.imei;
  if (previous && (!after.imei || imeiAlias(previous) !== imeiAlias(after.imei)))
    writes.push(releaseAlias(ports, device, { kind: "imei", value: imeiAlias(previous) }));
  if (after.imei) {
    const key = aliasKey(device.tenantId, "imei", imeiAlias(after.imei));
    const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.identity, Key: key, ConsistentRead: true }));
    if (!Item || Item.deviceId === device.id) {
      writes.push({
        Put: {
          TableName: ports.tables.identity,
          Item: { ...key, deviceId: device.id, kind: "imei", value: imeiAlias(after.imei) },
          ConditionExpression: "attribute_not_exists(pk) OR deviceId = :device",
          ExpressionAttributeValues: { ":device": device.id },
        },
      });
    }
  }
  return writes;
}

/**
 * A profile the device's eIM installed or enabled identifies the device from then on (SGP.32: operators report by the
 * ICCID of the profile in use): its ICCID becomes an alias of the device, unless another device holds it.
 */
async function followedProfiles(ports: Ports, device: Device, before: IdentityState, after: IdentityState): Promise<TransactItem[]> {
  const known = new Set([...device.iccids, ...profileIccids(before)]);
  const following = new Set(profileIccids(after));
  const writes: TransactItem[] = [];
  // A profile deleted from the eUICC no longer names the device: its ICCID is released, if it is the device's (one another
  // device held first stays that device's: a release conditional on being this device's would fail every time).
  for (const iccid of known) {
    if (following.has(iccid) || device.iccids.includes(iccid)) continue;
    const key = aliasKey(device.tenantId, "iccid", iccid);
    const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.identity, Key: key, ConsistentRead: true }));
    if (Item?.deviceId === device.id) writes.push(releaseAlias(ports, device, { kind: "iccid", value: iccid }));
  }
  for (const iccid of following) {
    if (known.has(iccid)) continue;
    const key = aliasKey(device.tenantId, "iccid", iccid);
    const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.identity, Key: key, ConsistentRead: true }));
    if (Item) continue;
    // Held in its other spelling (with or without the check digit) by a device: that device's SIM, as a registration
    // would be refused on it (review 120).
    const other = iccidOtherSpelling(iccid);
    const spelled =
      other === undefined
        ? undefined
        : (
            await ports.db.send(
              new GetCommand({ TableName: ports.tables.identity, Key: aliasKey(device.tenantId, "iccid", other), ConsistentRead: true }),
            )
          ).Item;
    if (spelled) continue;
    writes.push({
      Put: {
        TableName: ports.tables.identity,
        Item: { ...key, deviceId: device.id, kind: "iccid", value: iccid },
        ConditionExpression: "attribute_not_exists(pk)",
      },
    });
  }
  return writes;
}

type Bindings = ReturnType<typeof bindingsOf>;

/** The enforcement view of a device being revoked, with the addresses its revocation releases (`lastAddresses`), if any. */
function revokedView(device: Device, feed: readonly FeedChange[]) {
  const released = feed.flatMap((change) => (change.kind === "binding" && change.value === null ? [change.key] : [])).sort();
  return { ...enforcementView(device), ...(released.length === 0 ? {} : { lastAddresses: released }) };
}

/**
 * The marker that lists the device among the tenant's revocations (the feed snapshot serves them first, `feed.ts`): its
 * enforcement view, with the addresses its revocation released as a map (`lastAddresses`), from which the bind of one
 * of them to another device removes it (`bindingChanges`): a snapshot names an address as the revoked device's until
 * another device is bound to it, as the deltas do.
 */
function revocationMarker(ports: Ports, device: Device, view: ReturnType<typeof revokedView>, now: string): TransactItem {
  const { lastAddresses, ...enforcement } = view;
  return {
    Put: {
      TableName: ports.tables.identity,
      Item: {
        ...revokedKey(device.tenantId, device.id),
        ...revokedListKey(device.tenantId, device.id),
        deviceId: device.id,
        revokedAt: now,
        // Inside the view, which the listing index copies (an index's projection cannot change once it exists).
        view: {
          ...enforcement,
          ...(lastAddresses ? { lastAddresses: Object.fromEntries(lastAddresses.map((address) => [address, 1])) } : {}),
        },
      },
    },
  };
}

/** The condition that a binding item is still at the revision read (items written before revisions have none). */
function atRevision(item: Record<string, unknown> | undefined): {
  ConditionExpression: string;
  ExpressionAttributeValues?: Record<string, unknown>;
} {
  if (!item) return { ConditionExpression: "attribute_not_exists(pk)" };
  if (item.rev === undefined) return { ConditionExpression: "attribute_not_exists(rev)" };
  return { ConditionExpression: "rev = :rev", ExpressionAttributeValues: { ":rev": item.rev } };
}

/**
 * How long a release's tombstone is kept (DynamoDB's TTL then deletes it, within a few days more). Every feed snapshot
 * reads the tombstones of its partitions (filtered out, but read and billed): kept for ever, a tenant whose devices
 * keep taking new addresses would make each snapshot read one item per address it ever released. A tombstone keeps
 * the address's revision only for the cut's order between changes still in flight (ledger/cut.ts), which the sequencer
 * covers within seconds: an address bound again once its tombstone is gone starts above every revision it had (see
 * `nextRevision`), so deleting the tombstone loses nothing the order needs. A revocation's releases are kept until the
 * address is bound again: they name the revoked device whose marker the bind clears (`bindingChanges`).
 */
export const bindingTombstoneSeconds = 7 * 24 * 60 * 60;

/**
 * The revision a write of an address's item writes: the next of the one read; for an address with no item (never
 * bound, or its tombstone expired), the write's time in milliseconds, above any revision the address had before its
 * tombstone expired (each revision is one committed write, and a tombstone lives days, so a chain that started at an
 * earlier time, or at 1 before this rule, never reached it).
 */
const nextRevision = (item: Record<string, unknown> | undefined, now: string) =>
  item ? Number(item.rev ?? 0) + 1 : Math.max(1, Date.parse(now));

/**
 * Puts the addresses the device now holds; releases those it gave up and still holds (an address another device took
 * meanwhile is left to it; a write that finds the address changed since it was read fails as a conflict, and the fact
 * is folded again). Every write of an address is conditional on the revision read here and writes the next one (a
 * release leaves a tombstone, out of the listing, that keeps the revision for `bindingTombstoneSeconds`): the
 * address's changes are ordered by revision whichever device, and so whichever ledger shard, records them
 * (ledger/cut.ts).
 */
/** When the session holding each of a state's addresses began (its fact's time). */
function sessionTimes(state: IdentityState): Map<string, string> {
  const times = new Map<string, string>();
  for (const session of Object.values(state.sessions))
    for (const address of [session?.ipv4, session?.ipv6]) if (address && session) times.set(address, session.since);
  return times;
}

async function bindingChanges(
  ports: Ports,
  device: Device,
  before: Bindings,
  after: Bindings,
  now: string,
  revoking: boolean,
  sessionsBegan: ReadonlyMap<string, string> = new Map(),
) {
  const bound = [...after].filter(([address, binding]) => {
    const previous = before.get(address);
    return !previous || previous.bearer !== binding.bearer || previous.apn !== binding.apn || previous.country !== binding.country;
  });
  const given = [...before.keys()].filter((address) => !after.has(address));
  const current = await readBindings(ports, ports.tables.identity, device.tenantId, [...bound.map(([address]) => address), ...given]);
  const writes: TransactItem[] = [];
  const feed: FeedChange[] = [];
  /**
   * The write of an address's item where bindings are kept now, conditional on the revision read. An item still where
   * they were kept before moves: the new item may not exist yet, and the former one is deleted at the revision read.
   */
  const written = (address: string, item: Record<string, unknown>, extra?: { condition: string; values: Record<string, unknown> }) => {
    const stored = current.get(address);
    const condition = atRevision(stored?.legacy ? undefined : stored?.item);
    const join = (base: { ConditionExpression: string; ExpressionAttributeValues?: Record<string, unknown> }) => ({
      ConditionExpression: extra ? `${extra.condition} AND ${base.ConditionExpression}` : base.ConditionExpression,
      ...(extra || base.ExpressionAttributeValues
        ? { ExpressionAttributeValues: { ...base.ExpressionAttributeValues, ...extra?.values } }
        : {}),
    });
    writes.push({ Put: { TableName: ports.tables.identity, Item: item, ...(stored?.legacy ? condition : join(condition)) } });
    if (stored?.legacy)
      writes.push({
        Delete: { TableName: ports.tables.identity, Key: legacyBindingKey(device.tenantId, address), ...join(atRevision(stored.item)) },
      });
  };
  /** Revoked devices' markers naming an address bound here as theirs, and which (one write per marker: a transaction writes an item once). */
  const revokedHolders = new Map<string, string[]>();
  for (const [address, binding] of bound) {
    const previous = current.get(address)?.item;
    // A session that changed country only (a roaming report) writes again only an address the device holds. One it no
    // longer holds the address in (its detach lost, another device given it since) takes nothing back for it (review 120:
    // before bindings carried countries a roaming report wrote no binding, and with one it took an address through the
    // guard below, which lets a binding written before `sessionAt` be taken).
    const was = before.get(address);
    const countryOnly = was !== undefined && was.bearer === binding.bearer && was.apn === binding.apn;
    if (countryOnly && previous?.deviceId !== device.id) continue;
    const sessionAt = sessionsBegan.get(address);
    // Held by another device in a session that began later: a late attach does not take it (review 95: an hour-old
    // attach delivered late took the address from the device holding it now, and its detach then released it).
    // Bindings written before this rule have no `sessionAt`, and are taken as before.
    if (
      typeof previous?.deviceId === "string" &&
      previous.deviceId !== device.id &&
      typeof previous.sessionAt === "string" &&
      sessionAt !== undefined &&
      previous.sessionAt > sessionAt
    )
      continue;
    if (typeof previous?.revokedDevice === "string" && previous.deviceId === undefined && previous.revokedDevice !== device.id)
      revokedHolders.set(previous.revokedDevice, [...(revokedHolders.get(previous.revokedDevice) ?? []), address]);
    const rev = nextRevision(previous, now);
    written(address, {
      ...bindingKey(device.tenantId, address),
      deviceId: device.id,
      address,
      ...binding,
      since: now,
      ...(sessionAt === undefined ? {} : { sessionAt }),
      rev,
    });
    feed.push({ kind: "binding", key: address, value: { deviceId: device.id, address, ...binding }, rev });
  }
  for (const address of given) {
    const item = current.get(address)?.item;
    // Another device holds it now (or nobody does): nothing of this device's to release.
    if (item?.deviceId !== device.id) continue;
    const rev = nextRevision(item, now);
    const expiresAt = Math.floor(Date.parse(now) / 1000) + bindingTombstoneSeconds;
    written(
      address,
      // A revocation's release names the revoked device: the bind of the address to another device clears its marker's.
      // It does not expire (review 63: gone, the bind no longer knew to clear the marker, which named the address as the
      // revoked device's for good); there is one per address a revocation released.
      {
        ...bindingKey(device.tenantId, address),
        address,
        rev,
        releasedAt: now,
        ...(revoking ? { revokedDevice: device.id } : { expiresAt }),
      },
      {
        condition: "deviceId = :device",
        values: { ":device": device.id },
      },
    );
    feed.push({ kind: "binding", key: address, value: null, rev });
  }
  const markers = [...revokedHolders].map(
    ([revoked, addresses]): TransactItem => ({
      Update: {
        TableName: ports.tables.identity,
        Key: revokedKey(device.tenantId, revoked),
        UpdateExpression: `REMOVE #view.lastAddresses.${addresses.map((_, index) => `#a${index}`).join(", #view.lastAddresses.")}`,
        ExpressionAttributeNames: { "#view": "view", ...Object.fromEntries(addresses.map((address, index) => [`#a${index}`, address])) },
      },
    }),
  );
  return { writes, feed, markers };
}
