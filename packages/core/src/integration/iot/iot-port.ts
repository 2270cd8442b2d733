/**
 * The port through which simroot drives AWS IoT Core's registry: things, thing groups,
 * certificates and policies. `iot-sdk.ts` implements it with `@aws-sdk/client-iot`; the
 * domain (`iot-sync.ts`) only speaks these verbs, so it can be tested without AWS.
 */

/** A thing as the registry holds it, with the groups it belongs to. */
export interface IotThing {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly version: number;
  readonly thingTypeName?: string;
  readonly groups: readonly string[];
}

/** What a group does to the things in it: the policy attached to the group. */
export interface IotGroupSpec {
  readonly name: string;
  /** The policy attached to the group; `undefined` leaves the group without one. */
  readonly policy?: { readonly name: string; readonly document: string };
}

export interface IotControl {
  /** DescribeThing and ListThingGroupsForThing; `undefined` when the thing does not exist. */
  getThing(name: string): Promise<IotThing | undefined>;
  /** Throws `IotThingChanged` when the thing exists (another run created it since it was read). */
  createThing(name: string, thingTypeName: string, attributes: Record<string, string>): Promise<void>;
  /**
   * Replaces the attributes (merge false), on condition of `version` (optimistic, as IoT's expectedVersion): throws
   * `IotThingChanged` when the thing is at another version.
   */
  updateThing(name: string, thingTypeName: string, attributes: Record<string, string>, version: number): Promise<void>;
  /** Adds and removes group memberships; batched in one call where the adapter can. */
  moveThing(name: string, add: readonly string[], remove: readonly string[]): Promise<void>;
  /** Creates the group (and its policy, attached to it) if missing; idempotent. */
  ensureGroup(spec: IotGroupSpec): Promise<void>;
  ensureThingType(name: string): Promise<void>;
  /** The certificate ARNs attached to the thing (ListThingPrincipals). */
  listCertificates(thing: string): Promise<string[]>;
  /** Sets the certificate REVOKED (idempotent) and detaches every policy from it; returns the detached policy names. */
  revokeCertificate(certificateArn: string): Promise<{ revoked: boolean; detached: string[] }>;
}

/** Raised by an adapter when a referenced resource (group, thing type) does not exist. */
export class IotMissingResource extends Error {
  override readonly name = "IotMissingResource";
}

/**
 * Raised by an adapter when the thing changed since it was read (UpdateThing's expectedVersion refused, CreateThing
 * finding it created): another run of the same device wrote it in between.
 */
export class IotThingChanged extends Error {
  override readonly name = "IotThingChanged";
}
