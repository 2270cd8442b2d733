/**
 * Applies one fact to one device: read, fold, diff, commit. The device item is written
 * under an optimistic condition on its revision, with the audit records, feed entries and
 * IP bindings of the change in the same transaction; a concurrent writer makes it re-read
 * and fold again. Safe to repeat: a known fact is a duplicate, an outdated one is stale.
 */
import { tenantSettings } from "../access/tenant-settings.ts";
import type { RequestContext } from "../context.ts";
import { enforcementView, type Device } from "../device/device.ts";
import { bindingKey, bindingListKey, revokedKey, revokedListKey } from "../device/keys.ts";
import { deviceItem, forgetDevice, recentDevice, rememberDevice } from "../device/store.ts";
import { SimrootError, isSimrootError } from "../error.ts";
import { domainEvent, type DomainEvent } from "../event/event.ts";
import type { FeedChange } from "../ledger/change.ts";
import type { Ports } from "../ports.ts";
import { writeTransaction, type TransactItem } from "../store/transaction.ts";
import { bindingsOf, diffStates } from "./diff.ts";
import type { Fact } from "./fact.ts";
import { admission, currentState, remember } from "./fold.ts";
import type { FoldSettings } from "./identity-state.ts";

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
  return { imeiLock: device.imeiLock ?? settings.imeiLock, allowedCountries: settings.allowedCountries };
}

export async function applyFact(
  ports: Ports,
  ctx: RequestContext,
  deviceId: string,
  fact: Fact,
  cause: Record<string, unknown>,
): Promise<{ value: AppliedFact; events: DomainEvent[] }> {
  const movedAway = new Set<string>();
  for (let attempt = 1; ; attempt++) {
    try {
      return await attemptFact(ports, ctx, deviceId, fact, cause, movedAway);
    } catch (error) {
      forgetDevice(ports, ctx.tenantId, deviceId);
      if (!isSimrootError(error) || attempt >= maxAttempts) throw error;
      if (error.code === "identity.binding_moved") movedAway.add(String(error.detail.address));
      else if (error.code !== "store.conflict") throw error;
      // Writers in other instances on the same device: back off (capped, jittered) before folding again.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** attempt)));
    }
  }
}

async function attemptFact(
  ports: Ports,
  ctx: RequestContext,
  deviceId: string,
  fact: Fact,
  cause: Record<string, unknown>,
  movedAway: ReadonlySet<string>,
) {
  const stored = await recentDevice(ports, ctx.tenantId, deviceId);
  if (!stored) throw new SimrootError("device.not_found", "not_found", `No device ${deviceId}`);
  const { device, history } = stored;
  const admitted = admission(history, fact);
  if (admitted !== "new") return { value: { outcome: admitted, deviceId, changes: [] }, events: [] };

  const settings = await foldSettingsOf(ports, device);
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
  if (changes.length === 0) {
    // Remembered (so every arrival order folds alike) but visible to no one: no audit, no feed.
    await writeTransaction(ports.db, [putDevice], conflict);
    rememberDevice(ports, { device: next, history: nextHistory });
    return { value: { outcome: "stale" as const, deviceId, changes: [] }, events: [] };
  }

  const events = changes.map((change) => domainEvent(ctx, change.type, deviceId, { ...change.data, deviceId, cause }, now));
  const bindings = bindingChanges(ports, device, bindingsOf(before), bindingsOf(after), movedAway, now.toISOString());
  // Last, so that the bindings' write indices (onConditionFailed) stay as they are.
  const revocation = next.state === "revoked" && device.state !== "revoked" ? [revocationMarker(ports, next, now.toISOString())] : [];
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    writes: [putDevice, ...bindings.writes, ...revocation],
    events,
    feed: [{ kind: "device", key: deviceId, value: enforcementView(next) }, ...bindings.feed],
    onConditionFailed: (index) => {
      const address = bindings.deletedAt.get(index - 1);
      return address === undefined
        ? conflict()
        : new SimrootError("identity.binding_moved", "conflict", `${address} is bound to another device now`, { detail: { address } });
    },
  });
  rememberDevice(ports, { device: next, history: nextHistory });
  return { value: { outcome: "applied" as const, deviceId, changes: changes.map((change) => change.type) }, events };
}

type Bindings = ReturnType<typeof bindingsOf>;

/** The marker that lists the device among the tenant's revocations (the feed snapshot serves them first). */
function revocationMarker(ports: Ports, device: Device, now: string): TransactItem {
  return {
    Put: {
      TableName: ports.tables.identity,
      Item: { ...revokedKey(device.tenantId, device.id), ...revokedListKey(device.tenantId, device.id), deviceId: device.id, revokedAt: now, view: enforcementView(device) },
    },
  };
}

/**
 * Puts the addresses the device now holds; removes those it gave up, on condition that no
 * other device took them since (`movedAway` lists those found taken on an earlier attempt).
 */
function bindingChanges(ports: Ports, device: Device, before: Bindings, after: Bindings, movedAway: ReadonlySet<string>, now: string) {
  const writes: TransactItem[] = [];
  const feed: FeedChange[] = [];
  const deletedAt = new Map<number, string>();
  for (const [address, binding] of after) {
    const previous = before.get(address);
    if (previous && previous.bearer === binding.bearer && previous.apn === binding.apn) continue;
    writes.push({
      Put: {
        TableName: ports.tables.identity,
        Item: { ...bindingKey(device.tenantId, address), ...bindingListKey(device.tenantId, address), deviceId: device.id, address, ...binding, since: now },
      },
    });
    feed.push({ kind: "binding", key: address, value: { deviceId: device.id, address, ...binding } });
  }
  for (const address of before.keys()) {
    if (after.has(address) || movedAway.has(address)) continue;
    deletedAt.set(writes.length, address);
    writes.push({
      Delete: {
        TableName: ports.tables.identity,
        Key: bindingKey(device.tenantId, address),
        ConditionExpression: "deviceId = :device",
        ExpressionAttributeValues: { ":device": device.id },
      },
    });
    feed.push({ kind: "binding", key: address, value: null });
  }
  return { writes, feed, deletedAt };
}

