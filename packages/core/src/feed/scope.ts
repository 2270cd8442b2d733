/**
 * A narrowed feed: an enforcement point at a site or in front of a segment asks only for the
 * devices whose labels match an equality selector (`site=north,fleet=meters`), and the IP
 * bindings they hold. Policies, grants and settings are never narrowed: a PEP evaluates the
 * whole policy. The narrowed view is exactly the full view restricted to the scope:
 *   - a device that changed and is out of scope arrives as a removal when it may have left it (it was in the scope
 *     before the change: a relabel names the labels before it, `labelsBefore`), and not at all when it never was in it
 *     (in a snapshot's replay, whose listing may hold any earlier state of it, always as a removal);
 *   - a binding whose device is out of scope arrives as a removal (the address moved away);
 *   - a device whose change carried no binding entries (a label change, a suspension) comes
 *     with the bindings it owns: set when in scope, removed when not, so a device entering
 *     the scope is enforceable at once.
 * Narrowing saves bytes and PEP memory. A `pep` key created with a selector (POST /v1/keys) is held to it
 * (`keyScope`): it reads that view, or a narrower one, never another. What such a key still reads of the rest of the
 * tenant: the whole policy, grants and settings, and, as removals (no value), the ids of devices that left its scope
 * after its version (and, in the replay that ends a snapshot, of devices out of it that changed in its last seconds) and,
 * as removals, every address bound to a device out of it or released (a binding entry does not name its former holder,
 * so an address that never was in the scope cannot be told from one that left it: review 121); never a device record
 * or a binding's value out of its scope.
 */
import * as z from "zod";
import { SimrootError } from "../error.ts";
import { readBindings } from "../device/bindings.ts";
import { deviceKey } from "../device/keys.ts";
import { bindingsOf } from "../identity/diff.ts";
import type { IdentityState } from "../identity/identity-state.ts";
import type { Ports } from "../ports.ts";
import { batchGetAll } from "../store/batch-get.ts";
import type { ReadEntry } from "./read-entry.ts";
import { bindingValue, type FeedEntry } from "./wire.ts";

export interface FeedScope {
  readonly labels: Readonly<Record<string, string>>;
  /** Canonical form (sorted keys, URI-encoded values): what the signed head names. */
  readonly text: string;
}

/** A selector's text as requests give it (the feed's `selector`, a pep key's binding); `parseScope` reads it. */
export const selectorText = z.string().min(3).max(1024);

const keyPattern = /^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/;
const invalid = (message: string) => new SimrootError("request.invalid", "input", message, { issues: [{ path: "selector", message }] });

/** Parses `key=value[,key=value...]` (values URI-encoded where they hold a comma). */
export function parseScope(selector: string): FeedScope {
  const labels: Record<string, string> = {};
  for (const part of selector.split(",")) {
    const at = part.indexOf("=");
    if (at < 1) throw invalid(`"${part}" is not key=value`);
    const key = part.slice(0, at);
    let value: string;
    try {
      value = decodeURIComponent(part.slice(at + 1));
    } catch {
      throw invalid(`the value of ${key} is not URI-encoded`);
    }
    if (!keyPattern.test(key)) throw invalid(`"${key}" is not a label key`);
    if (value.length > 63) throw invalid(`the value of ${key} is longer than 63 characters`);
    if (key in labels && labels[key] !== value) throw invalid(`${key} is given twice`);
    labels[key] = value;
  }
  const text = Object.keys(labels)
    .sort()
    .map((key) => `${key}=${encodeURIComponent(labels[key]!)}`)
    .join(",");
  return { labels, text };
}

/**
 * The scope a feed request is served with: what it asks for, when the key is bound to none; else the key's own
 * selector, or a narrower one the request asks for (every label of the key's, with the same value, and more). Any
 * other is refused (403 feed.selector_not_bound): a key bound to one site never reads another's devices.
 */
export function keyScope(bound: string | undefined, requested: string | undefined): FeedScope | undefined {
  const asked = requested === undefined ? undefined : parseScope(requested);
  if (bound === undefined) return asked;
  const own = parseScope(bound);
  if (asked === undefined) return own;
  if (Object.entries(own.labels).every(([key, value]) => asked.labels[key] === value)) return asked;
  throw new SimrootError(
    "feed.selector_not_bound",
    "forbidden",
    `This key is bound to the selector ${own.text}: it reads that view or a narrower one, not ${asked.text}`,
    { detail: { selector: own.text } },
  );
}

export const inScope = (scope: FeedScope, labels: unknown): boolean => {
  const held = (labels ?? {}) as Record<string, unknown>;
  for (const key in scope.labels) if (held[key] !== scope.labels[key]) return false;
  return true;
};

/** Items of the identity table by key (each key once: a device changed twice between two polls names its key twice). */
const batchGet = (ports: Ports, keys: readonly Record<string, string>[]) => batchGetAll(ports, ports.tables.identity, keys);

/** The labels of each device, read from the store. */
async function labelsOf(ports: Ports, tenantId: string, deviceIds: Iterable<string>): Promise<Map<string, unknown>> {
  const ids = [...new Set(deviceIds)];
  const items = await batchGet(
    ports,
    ids.map((id) => deviceKey(tenantId, id)),
  );
  return new Map(items.map((item) => [String(item.id), item.labels]));
}

/**
 * The ids among `deviceIds` of the tenant's devices whose labels match the scope, read now (labels change): a device
 * the tenant does not have and one out of the scope are alike left out, so a key held to a scope learns nothing of
 * the devices outside it (`POST /v1/flows` from a bound pep key).
 */
export async function devicesInScope(ports: Ports, tenantId: string, scope: FeedScope, deviceIds: Iterable<string>): Promise<Set<string>> {
  const labels = await labelsOf(ports, tenantId, deviceIds);
  return new Set([...labels].filter(([, held]) => inScope(scope, held)).map(([id]) => id));
}

/** The binding entries of a snapshot page that belong to devices in scope. */
export async function scopeSnapshotBindings(
  ports: Ports,
  tenantId: string,
  scope: FeedScope,
  bindings: readonly FeedEntry[],
): Promise<FeedEntry[]> {
  const labels = await labelsOf(
    ports,
    tenantId,
    bindings.map((entry) => String(entry.value?.deviceId)),
  );
  return bindings.filter((entry) => inScope(scope, labels.get(String(entry.value?.deviceId))));
}

/** The addresses each device owns now: those its identity holds whose binding item still names it. */
async function ownedBindings(
  ports: Ports,
  tenantId: string,
  deviceIds: readonly string[],
): Promise<Map<string, Record<string, unknown>[]>> {
  const devices = await batchGet(
    ports,
    deviceIds.map((id) => deviceKey(tenantId, id)),
  );
  const addresses = devices.flatMap((item) => [...bindingsOf(item.identity as IdentityState).keys()]);
  const bindings = [...(await readBindings(ports, ports.tables.identity, tenantId, addresses)).values()].map(({ item }) => item);
  const owned = new Map<string, Record<string, unknown>[]>(deviceIds.map((id) => [id, []]));
  for (const item of bindings) owned.get(String(item.deviceId))?.push(bindingValue(item));
  return owned;
}

/**
 * Deltas restricted to the scope (see the module's rules). Entries keep their versions and order. `deltas`: the PEP
 * holds the narrowed view at the version before the entries, so a device out of the scope before and after its change
 * is none of its business; `replay` (the end of a snapshot, after a listing that may hold any earlier state of a
 * device): every device out of the scope is a removal.
 */
export async function scopeDeltas(
  ports: Ports,
  tenantId: string,
  scope: FeedScope,
  entries: readonly ReadEntry[],
  after: "deltas" | "replay",
): Promise<FeedEntry[]> {
  const deviceScope = new Map<string, boolean>();
  // Which devices each version bound. A version is a sequencing run's cut: it carries many devices' changes, so a
  // release in it (its value null, no device named) says nothing of any one device.
  const bound = new Set<string>();
  for (const entry of entries)
    if (entry.kind === "binding" && entry.value !== null) bound.add(`${entry.version}|${String(entry.value.deviceId)}`);
  /**
   * Device entries whose version bound nothing to them: they come with the addresses they own now (a device entering
   * the scope is enforceable at once, one leaving it takes its addresses along). A device whose own change released an
   * address owns it no more, so its release alone speaks for it.
   */
  const bare = new Set<FeedEntry>();
  /** Device entries of devices out of the scope before and after their change (`deltas`): left out, with their addresses. */
  const unseen = new Set<FeedEntry>();
  for (const entry of entries) {
    if (entry.kind !== "device") continue;
    const held = entry.value !== null && inScope(scope, entry.value.labels);
    deviceScope.set(entry.key, held);
    if (!held && after === "deltas" && entry.value !== null && !inScope(scope, entry.labelsBefore ?? entry.value.labels)) {
      unseen.add(entry);
      continue;
    }
    if (!bound.has(`${entry.version}|${entry.key}`) && entry.value !== null) bare.add(entry);
  }
  const unknown = entries.filter(
    (entry) => entry.kind === "binding" && entry.value !== null && !deviceScope.has(String(entry.value.deviceId)),
  );
  if (unknown.length > 0) {
    for (const [id, labels] of await labelsOf(
      ports,
      tenantId,
      unknown.map((entry) => String(entry.value!.deviceId)),
    ))
      deviceScope.set(id, inScope(scope, labels));
  }
  const owned =
    bare.size > 0
      ? await ownedBindings(
          ports,
          tenantId,
          [...bare].map((entry) => entry.key),
        )
      : new Map<string, Record<string, unknown>[]>();

  const scoped: FeedEntry[] = [];
  for (const read of entries) {
    const { labelsBefore: _labelsBefore, ...entry } = read;
    if (entry.kind === "device") {
      if (unseen.has(read)) continue;
      const keep = deviceScope.get(entry.key) === true;
      scoped.push(keep ? entry : { ...entry, value: null });
      if (!bare.has(read)) continue;
      for (const binding of owned.get(entry.key) ?? []) {
        scoped.push({ version: entry.version, kind: "binding", key: String(binding.address), value: keep ? binding : null });
      }
    } else if (entry.kind === "binding" && entry.value !== null) {
      scoped.push(deviceScope.get(String(entry.value.deviceId)) === true ? entry : { ...entry, value: null });
    } else {
      scoped.push(entry);
    }
  }
  return scoped;
}
