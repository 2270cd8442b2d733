/**
 * The PEP's replicated view of its tenant (devices by id, IP bindings, policy rules, grants,
 * settings), the version it is at and the last signed head it accepted, kept on disk so a
 * restarted PEP resumes from its version instead of taking a snapshot. The view only
 * changes through `applyDeltas` and `replaceWith`, after `verify.ts` accepted the response.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname } from "node:path";
import type { FeedEntry, SignedHead } from "@simroot/core/feed/wire";
import type { Bearer } from "@simroot/core/catalogue/catalogue";
import type { DeviceState } from "@simroot/core/identity/identity-state";
import type { Grant, PolicyRule } from "@simroot/core/policy/model";
import { normalizeIp } from "./ip.ts";

/** What the feed says of a device (its enforcement view). Labels are frozen: the engine caches by identity. */
export interface DeviceView {
  readonly id: string;
  readonly state: DeviceState;
  readonly labels: Readonly<Record<string, string>>;
  readonly imsi?: string;
  readonly eid?: string;
  readonly credentialFingerprint?: string;
  readonly revision?: number;
  /** A revoked device's: the addresses its revocation released (a snapshot lists no released binding). */
  readonly lastAddresses?: readonly string[];
}

/** Which device holds an address inside the tenant's APN/DNN, on which bearer. */
export interface Binding {
  readonly deviceId: string;
  readonly address: string;
  readonly bearer: Bearer;
  readonly apn?: string;
  /** The country the device's session on this address comes from, when the control plane knows it (ISO 3166-1 alpha-2). */
  readonly country?: string;
}

/** What an application of entries changed: the engine recompiles only on `policy`. */
export interface ViewChange {
  readonly devices: number;
  readonly bindings: number;
  /** Rules, grants or settings changed. */
  readonly policy: boolean;
}

/**
 * Format 1, or 2 for a view kept while a snapshot was under way (`snapshotPending`): a PEP of a release before it
 * reads format 1 only, and would have resumed the deltas after the view's older version, where an older view of a
 * device revoked since could replace its revocation (review 66). It refuses the file instead (and says to move it aside).
 */
const stateFormat = 1;
const pendingStateFormat = 2;

export interface PersistedState {
  readonly format: typeof stateFormat | typeof pendingStateFormat;
  readonly tenantId: string | undefined;
  /** The selector the view is narrowed to (canonical), absent for the whole tenant. */
  readonly scope?: string;
  readonly version: number;
  /** The feed epoch of the view (absent in files written before epochs: 0). */
  readonly epoch?: number;
  readonly head: SignedHead | undefined;
  readonly devices: readonly DeviceView[];
  readonly bindings: readonly Binding[];
  readonly policies: readonly PolicyRule[];
  readonly grants: readonly Grant[];
  readonly settings: Readonly<Record<string, Record<string, unknown>>>;
  /** Addresses last held by a device now revoked: address to device id (absent in files written before it). */
  readonly revokedAddresses?: Readonly<Record<string, string>>;
  /** Saved while a snapshot was under way (its revocations enforced early): take a snapshot before anything else. */
  readonly snapshotPending?: boolean;
  /** Since when (ISO 8601) the snapshot has been pending: its first revocations page (absent in files written before it). */
  readonly snapshotPendingSince?: string;
  /** The addresses the pending snapshot's revoked devices released, enforced until it completes. */
  readonly pendingRevokedAddresses?: Readonly<Record<string, string>>;
}

/** At most this many addresses of revoked devices are remembered (the oldest forgotten first). */
const maxRevokedAddresses = 100_000;

const freezeDevice = (value: Record<string, unknown>): DeviceView =>
  Object.freeze({ ...(value as unknown as DeviceView), labels: Object.freeze({ ...((value.labels ?? {}) as Record<string, string>) }) });

/** The addresses a revoked device's view names as released by its revocation (`lastAddresses`), in their one spelling. */
const lastAddresses = (value: Record<string, unknown> | null): string[] =>
  value?.state === "revoked" && Array.isArray(value.lastAddresses)
    ? value.lastAddresses.flatMap((address) => (typeof address === "string" ? [normalizeIp(address)] : []))
    : [];

export class PepState {
  /** The tenant the PEP enforces for: configured, or learned from its first verified snapshot. */
  tenantId: string | undefined;
  /** The canonical selector the view is narrowed to (set with each verified snapshot); undefined for the whole tenant. */
  scope: string | undefined;
  version = 0;
  /** The feed epoch the view is of (an admin advances it after a restore; see core's feed/epoch.ts). */
  epoch = 0;
  /** The last signed head accepted (a response's or an idle poll's): its expiry is the view's freshness. */
  head: SignedHead | undefined;
  /** The head the sync accepted last, with the wall clock (epoch ms) and a monotonic clock (ms) then: not saved. */
  #accepted: { readonly head: SignedHead; readonly wall: number; readonly monotonic: number } | undefined;
  readonly devices = new Map<string, DeviceView>();
  readonly bindings = new Map<string, Binding>();
  readonly policies = new Map<string, PolicyRule>();
  readonly grants = new Map<string, Grant>();
  readonly settings = new Map<string, Record<string, unknown>>();
  /** Increases whenever rules, grants or settings change (the engine compares it to recompile). */
  policyRevision = 0;
  /** Bindings by device id, for requests that name the device rather than its address. */
  readonly #bindingsByDevice = new Map<string, Set<string>>();
  /**
   * The addresses revoked devices held last, until another device is bound to them: a revocation releases the
   * device's addresses, and a request from one of them must still be known as the revoked device's when the feed is
   * stale (no break-glass for it). Bounded by `maxRevokedAddresses`.
   */
  readonly #revokedAddresses = new Map<string, string>();
  /**
   * The addresses the revoked devices of a snapshot under way released (its first pages, `applyRevocations`): denied
   * whoever the view binds them to, until the snapshot completes. Not taken into the view's bindings: that page is
   * listed from an eventually consistent index, which can still name an address another device has since been bound to,
   * as the snapshot's later pages (read consistently) say (review 65).
   */
  readonly #pendingRevoked = new Map<string, string>();
  /** A snapshot is under way, its revocations enforced early: a restart takes one before anything else. */
  snapshotPending = false;
  /**
   * Since when (ISO 8601) `snapshotPending` has held: the first revocations page of the snapshot, kept across the
   * snapshot's retries and a restart (/healthz shows how long the PEP has enforced a partial view). Undefined when
   * nothing is pending, or for a state file written before it was kept.
   */
  snapshotPendingSince: string | undefined;

  constructor(tenantId?: string) {
    this.tenantId = tenantId;
  }

  /**
   * Takes `signed` as the head held, verified at `wall` (epoch ms) when a monotonic clock read `monotonic` (ms): the
   * engine then counts what was left of its lifetime on the monotonic clock too, so a wall clock set back after it was
   * accepted does not make it fresh again (review 85).
   */
  accept(signed: SignedHead, wall: number, monotonic: number): void {
    this.head = signed;
    this.#accepted = { head: signed, wall, monotonic };
  }

  /** When the head held was accepted (`accept`), or undefined when it was set otherwise (loaded from the state file). */
  get headAccepted(): { readonly wall: number; readonly monotonic: number } | undefined {
    return this.#accepted !== undefined && this.#accepted.head === this.head ? this.#accepted : undefined;
  }

  /** Epoch ms until which the view may be enforced; 0 without an accepted head. */
  get freshUntil(): number {
    return this.head ? Date.parse(this.head.head.expiresAt) : 0;
  }

  /** Applies entries in order (a later entry for the same key wins; a null value removes). */
  apply(entries: readonly FeedEntry[]): ViewChange {
    let devices = 0;
    let bindings = 0;
    let policy = false;
    /**
     * Addresses released here (by a binding's removal, or named by a revoked device's view), and who held them: kept if
     * that device is revoked once the entries are applied and nobody holds the address then.
     */
    const released = new Map<string, string>();
    for (const entry of entries) {
      const value = entry.value;
      switch (entry.kind) {
        case "device":
          devices++;
          // Revocation is terminal: a view that is not revoked is from before it (deltas resumed from a version older
          // than a snapshot's revocations page the PEP kept: review 65).
          if (this.devices.get(entry.key)?.state === "revoked" && value?.state !== "revoked") break;
          if (value === null) this.devices.delete(entry.key);
          else this.devices.set(entry.key, freezeDevice(value));
          for (const address of lastAddresses(value)) released.set(address, entry.key);
          break;
        case "binding": {
          bindings++;
          const address = normalizeIp(entry.key);
          const holder = this.bindings.get(address)?.deviceId;
          this.#unbind(address);
          if (value !== null) {
            // Bound again later in the same entries: not the revoked device's any more, as if applied one at a time.
            released.delete(address);
            this.#bind({ ...(value as unknown as Binding), address });
          } else if (holder !== undefined) released.set(address, holder);
          break;
        }
        case "policy":
          policy = true;
          if (value === null) this.policies.delete(entry.key);
          else this.policies.set(entry.key, value as unknown as PolicyRule);
          break;
        case "grant":
          policy = true;
          if (value === null) this.grants.delete(entry.key);
          else this.grants.set(entry.key, value as unknown as Grant);
          break;
        case "settings":
          policy = true;
          if (value === null) this.settings.delete(entry.key);
          else this.settings.set(entry.key, value);
          break;
      }
    }
    for (const [address, holder] of released) this.#rememberRevoked(address, holder);
    if (policy) this.policyRevision++;
    return { devices, bindings, policy };
  }

  /** Keeps `address` as the revoked `holder`'s, unless the holder is not revoked or another device holds the address. */
  #rememberRevoked(address: string, holder: string) {
    if (this.devices.get(holder)?.state !== "revoked") return;
    const bound = this.bindings.get(address)?.deviceId;
    if (bound !== undefined && bound !== holder && this.devices.get(bound)?.state !== "revoked") return;
    this.#revokedAddresses.delete(address);
    this.#revokedAddresses.set(address, holder);
    if (this.#revokedAddresses.size > maxRevokedAddresses)
      this.#revokedAddresses.delete(this.#revokedAddresses.keys().next().value as string);
  }

  /** How many addresses a snapshot under way denies (its revoked devices released them) until it completes. */
  get pendingRevokedCount(): number {
    return this.#pendingRevoked.size;
  }

  /** The revoked device a snapshot under way says released `address`, whatever the view binds it to. */
  pendingRevokedHolder(address: string): string | undefined {
    return this.#pendingRevoked.size === 0 ? undefined : this.#pendingRevoked.get(normalizeIp(address));
  }

  /** The revoked device that held `address` last, if no device holds it now. */
  revokedHolder(address: string): string | undefined {
    const normalized = normalizeIp(address);
    return this.bindings.has(normalized) ? undefined : this.#revokedAddresses.get(normalized);
  }

  /**
   * Replaces the whole view with a complete snapshot's entries, what it knows of revoked devices' addresses too: the
   * snapshot's revoked views name them (as a PEP that follows every delta knows them).
   */
  replaceWith(entries: readonly FeedEntry[]): ViewChange {
    this.#revokedAddresses.clear();
    this.#pendingRevoked.clear();
    this.snapshotPending = false;
    this.snapshotPendingSince = undefined;
    this.devices.clear();
    this.bindings.clear();
    this.#bindingsByDevice.clear();
    this.policies.clear();
    this.grants.clear();
    this.settings.clear();
    const change = this.apply(entries);
    if (!change.policy) this.policyRevision++;
    return { ...change, policy: true };
  }

  /**
   * Enforces the revocations of a verified page at once, before the rest of its snapshot
   * arrives: revocation is terminal, so a device revoked at a later version is revoked now, and so
   * is the address its revocation released. Returns how many devices it newly revoked, and how many
   * addresses it learned. `now` (epoch ms) is when the snapshot becomes pending, if it was not already.
   */
  applyRevocations(entries: readonly FeedEntry[], now = Date.now()): { devices: number; addresses: number } {
    let devices = 0;
    let addresses = 0;
    for (const entry of entries) {
      if (entry.kind !== "device" || entry.value?.state !== "revoked") continue;
      if (this.devices.get(entry.key)?.state !== "revoked") {
        this.devices.set(entry.key, freezeDevice(entry.value));
        devices++;
      }
      // Whoever the older view binds the address to (review 63: the revoked device passed as that one), until the
      // snapshot completes (`#pendingRevoked`).
      for (const address of lastAddresses(entry.value)) {
        if (this.#pendingRevoked.get(address) !== entry.key) addresses++;
        this.#pendingRevoked.set(address, entry.key);
      }
    }
    if ((devices > 0 || addresses > 0) && !this.snapshotPending) {
      this.snapshotPending = true;
      this.snapshotPendingSince = new Date(now).toISOString();
    }
    return { devices, addresses };
  }

  /**
   * The view's revoked devices as device entries, each naming every address it is known to have released: what a PEP
   * keeps of a view it may not otherwise use (one of another selector, review 161), since revocation is terminal.
   */
  revocations(): FeedEntry[] {
    const released = new Map<string, Set<string>>();
    for (const known of [this.#revokedAddresses, this.#pendingRevoked])
      for (const [address, holder] of known) released.set(holder, (released.get(holder) ?? new Set()).add(address));
    return [...this.devices.values()]
      .filter((device) => device.state === "revoked")
      .map((device) => ({
        kind: "device" as const,
        key: device.id,
        version: this.version,
        value: { ...device, lastAddresses: [...new Set([...(device.lastAddresses ?? []), ...(released.get(device.id) ?? [])])] },
      }));
  }

  binding(address: string): Binding | undefined {
    return this.bindings.get(normalizeIp(address));
  }

  /** One of the device's current bindings (the most recent), if any. */
  bindingOf(deviceId: string): Binding | undefined {
    const addresses = this.#bindingsByDevice.get(deviceId);
    if (!addresses) return undefined;
    let last: string | undefined;
    for (const address of addresses) last = address;
    return last === undefined ? undefined : this.bindings.get(last);
  }

  #bind(binding: Binding) {
    this.#revokedAddresses.delete(binding.address);
    this.bindings.set(binding.address, binding);
    let addresses = this.#bindingsByDevice.get(binding.deviceId);
    if (!addresses) this.#bindingsByDevice.set(binding.deviceId, (addresses = new Set()));
    addresses.add(binding.address);
  }

  #unbind(address: string) {
    const previous = this.bindings.get(address);
    if (!previous) return;
    this.bindings.delete(address);
    const addresses = this.#bindingsByDevice.get(previous.deviceId);
    addresses?.delete(address);
    if (addresses?.size === 0) this.#bindingsByDevice.delete(previous.deviceId);
  }

  toJSON(): PersistedState {
    return {
      format: this.snapshotPending ? pendingStateFormat : stateFormat,
      tenantId: this.tenantId,
      ...(this.scope === undefined ? {} : { scope: this.scope }),
      version: this.version,
      epoch: this.epoch,
      head: this.head,
      devices: [...this.devices.values()],
      bindings: [...this.bindings.values()],
      policies: [...this.policies.values()],
      grants: [...this.grants.values()],
      settings: Object.fromEntries(this.settings),
      ...(this.#revokedAddresses.size === 0 ? {} : { revokedAddresses: Object.fromEntries(this.#revokedAddresses) }),
      ...(this.snapshotPending ? { snapshotPending: true } : {}),
      ...(this.snapshotPending && this.snapshotPendingSince !== undefined ? { snapshotPendingSince: this.snapshotPendingSince } : {}),
      ...(this.#pendingRevoked.size === 0 ? {} : { pendingRevokedAddresses: Object.fromEntries(this.#pendingRevoked) }),
    };
  }

  static fromJSON(json: PersistedState): PepState {
    if ((json?.format !== stateFormat && json?.format !== pendingStateFormat) || typeof json.version !== "number")
      throw new Error("not a simroot-pep state file (format 1 or 2)");
    const state = new PepState(json.tenantId);
    for (const device of json.devices) state.devices.set(device.id, freezeDevice(device as unknown as Record<string, unknown>));
    for (const binding of json.bindings) state.#bind({ ...binding, address: normalizeIp(binding.address) });
    for (const rule of json.policies) state.policies.set(rule.id, rule);
    for (const grant of json.grants) state.grants.set(grant.id, grant);
    for (const [key, value] of Object.entries(json.settings)) state.settings.set(key, value);
    for (const [address, deviceId] of Object.entries(json.revokedAddresses ?? {}))
      state.#revokedAddresses.set(normalizeIp(address), deviceId);
    for (const [address, deviceId] of Object.entries(json.pendingRevokedAddresses ?? {}))
      state.#pendingRevoked.set(normalizeIp(address), deviceId);
    state.snapshotPending = json.snapshotPending === true;
    if (state.snapshotPending && typeof json.snapshotPendingSince === "string" && Number.isFinite(Date.parse(json.snapshotPendingSince)))
      state.snapshotPendingSince = json.snapshotPendingSince;
    state.scope = json.scope;
    state.version = json.version;
    state.epoch = json.epoch ?? 0;
    state.head = json.head;
    state.policyRevision = 1;
    return state;
  }
}

/** Writes the state beside `path`, flushes it, then renames it over `path`: a crash leaves the old file or the new one. */
export async function saveState(path: string, state: PepState): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const aside = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const file = await open(aside, "w", 0o600);
  try {
    await file.writeFile(JSON.stringify(state));
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(aside, path);
  } catch (error) {
    await rm(aside, { force: true });
    throw error;
  }
  // The rename is durable once its directory is: a power cut before then could bring the older file back (safe, the
  // deltas since follow, but a restart later than it needs to be). Not every platform opens a directory to sync it.
  const directory = await open(dirname(path), "r").catch(() => undefined);
  try {
    await directory?.sync();
  } catch {
    // A file system that cannot sync a directory (some network mounts) keeps the rename as it can.
  } finally {
    await directory?.close();
  }
}

/** The state saved at `path`, or undefined when there is none. A corrupt file throws: the operator decides. */
export async function loadState(path: string): Promise<PepState | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    return PepState.fromJSON(JSON.parse(text) as PersistedState);
  } catch (error) {
    throw new Error(`${path} is not a simroot-pep state file (move it aside to start from a snapshot): ${(error as Error).message}`);
  }
}

/**
 * Makes the state file at `path` readable and writable by its owner only (as `saveState` writes it), when it is not;
 * true when it changed its mode. False when there is no file.
 */
export async function restrictStateFile(path: string): Promise<boolean> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  if ((mode & 0o077) === 0) return false;
  await chmod(path, 0o600);
  return true;
}
