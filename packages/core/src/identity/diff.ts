/**
 * What changed between two identity states, as the catalogue events that say so. These are
 * the `simroot` changes automation, timelines and webhooks consume: only visible changes,
 * so a late or repeated fact that changes nothing emits nothing.
 */
import type { Bearer, CatalogueType } from "../catalogue/catalogue.ts";
import { canonicalJson } from "../ledger/chain.ts";
import { unpaddedProfiles, type FoldSettings, type IdentityState, type Session } from "./identity-state.ts";
import { sessionCountry } from "./session-country.ts";

export interface StateChange {
  readonly type: CatalogueType;
  readonly data: Record<string, unknown>;
}

const lifecycleEvents = {
  active: "device.reinstated",
  suspended: "device.suspended",
  quarantined: "device.quarantined",
  revoked: "device.revoked",
} as const satisfies Record<IdentityState["state"], CatalogueType>;

const profileEvents = {
  installed: "profile.installed",
  enabled: "profile.enabled",
  disabled: "profile.disabled",
  deleted: "profile.deleted",
  failed: "profile.installed",
} as const satisfies Record<string, CatalogueType>;

/** Stored maps come back from DynamoDB in any key order: compare canonical forms. */
const same = (a: unknown, b: unknown) => canonicalJson(a ?? null) === canonicalJson(b ?? null);

export function diffStates(before: IdentityState, after: IdentityState, settings: FoldSettings): StateChange[] {
  const changes: StateChange[] = [];
  if (before.state !== after.state) {
    changes.push({ type: lifecycleEvents[after.state], data: { reason: after.stateReason, previousState: before.state } });
  }
  if (before.imei !== after.imei && after.imei !== undefined) {
    changes.push({ type: "device.equipment-changed", data: { imei: after.imei, previousImei: before.imei } });
  }
  changes.push(...sessionChanges(before, after));
  if (!same(before.roaming, after.roaming) && after.roaming) {
    const country = after.roaming.country;
    const allowed =
      !after.roaming.roaming ||
      settings.allowedCountries.length === 0 ||
      (country !== undefined && settings.allowedCountries.includes(country));
    changes.push({ type: "device.roaming-changed", data: { ...after.roaming, allowed } });
  }
  if (!same(before.reachable, after.reachable) && after.reachable) {
    changes.push({ type: "device.reachability-changed", data: { ...after.reachable } });
  }
  // A state stored before profiles were keyed without the F padding: compared as the fold keys them now.
  const previousProfiles = unpaddedProfiles(before.profiles);
  for (const [iccid, profile] of Object.entries(after.profiles)) {
    const previous = previousProfiles[iccid];
    if (previous?.state === profile.state) continue;
    changes.push({
      type: profileEvents[profile.state],
      data: {
        ...profile,
        previousState: previous?.state,
        ...(profile.state === "failed" ? { result: "failure" } : profile.state === "installed" ? { result: "success" } : {}),
      },
    });
  }
  return changes;
}

function sessionChanges(before: IdentityState, after: IdentityState): StateChange[] {
  const bearers = new Set([...Object.keys(before.sessions), ...Object.keys(after.sessions)] as Bearer[]);
  const opened: Session[] = [];
  const closed: Session[] = [];
  for (const bearer of bearers) {
    const was = before.sessions[bearer];
    const is = after.sessions[bearer];
    if (same(was, is)) continue;
    if (was && !is) closed.push(was);
    else if (is) opened.push(is);
  }
  // One session closing as another opens is a bearer switch.
  if (opened.length === 1 && closed.length === 1) {
    return [{ type: "bearer.switched", data: { ...opened[0]!, from: closed[0]!.bearer } }];
  }
  return [
    ...closed.map((session) => ({ type: "sim.detached" as const, data: { bearer: session.bearer } })),
    ...opened.map((session) => ({ type: "sim.attached" as const, data: { ...session } })),
  ];
}

/** What a PEP learns of an address a device holds: on which bearer, in which APN, from which country. */
export interface BindingValue {
  readonly bearer: Bearer;
  readonly apn?: string;
  readonly country?: string;
}

/** The tenant-wide IP bindings a state implies: address -> bearer, APN, country. */
export function bindingsOf(state: IdentityState): Map<string, BindingValue> {
  const bindings = new Map<string, BindingValue>();
  if (state.state === "revoked") return bindings;
  for (const session of Object.values(state.sessions)) {
    if (!session) continue;
    const country = sessionCountry(state, session);
    for (const address of [session.ipv4, session.ipv6]) {
      if (address)
        bindings.set(address, { bearer: session.bearer, ...(session.apn ? { apn: session.apn } : {}), ...(country ? { country } : {}) });
    }
  }
  return bindings;
}
