/**
 * Tailscale custom posture attributes: for a device mapped to a tailnet node (label
 * `tailscale/node`), simroot's state, score and roaming flag set as `custom:` attributes with
 * Tailscale's API (`POST /api/v2/device/{deviceId}/attributes/{attributeKey}`), so tailnet
 * policy (`srcPosture`) can require `custom:simrootScore >= 60`. Only the attributes that differ
 * from what was last pushed are sent; the last pushed values are kept in the store, not in memory.
 *
 * Each delivery that changed the tailnet is audited once, though its record's commit fails: the retry finds the node in
 * line (the store holds what was pushed) and changes nothing, so what a run is about to change is written down first
 * (`intendDelivery`), and the retry records that (review 133).
 */
import { randomUUID } from "node:crypto";
import { ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { systemContext } from "../../context.ts";
import { readDevice } from "../../device/store.ts";
import { SimrootError, isSimrootError } from "../../error.ts";
import type { DomainEvent } from "../../event/event.ts";
import type { Ports } from "../../ports.ts";
import { intendDelivery, readDelivery, recordDelivery } from "../delivery.ts";
import { postureOf, tailscaleNodeLabel, type Posture } from "./posture.ts";

export interface TailscaleSettings {
  readonly tenantId: string;
  readonly apiUrl: string;
  readonly apiKey: string;
}

export type PostureAttributes = Record<`custom:${string}`, string | number | boolean>;

export const postureAttributes = (posture: Posture): PostureAttributes => ({
  "custom:simrootState": posture.state,
  "custom:simrootScore": posture.score,
  "custom:simrootRoaming": posture.roaming,
});

/** The attributes simroot sets on a node. */
const postureAttributeNames = ["custom:simrootState", "custom:simrootScore", "custom:simrootRoaming"] as const;

/** Sets one custom attribute on one node; Tailscale answers 200 with the attribute. */
export async function setTailscaleAttribute(settings: TailscaleSettings, node: string, key: string, value: string | number | boolean) {
  const response = await fetch(`${settings.apiUrl}/api/v2/device/${encodeURIComponent(node)}/attributes/${encodeURIComponent(key)}`, {
    method: "POST",
    headers: { authorization: `Bearer ${settings.apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ value, comment: "simroot posture" }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) {
    throw new SimrootError("integration.tailscale_failed", "unavailable", `Tailscale answered ${response.status} for ${key} on ${node}`, {
      detail: { status: response.status, body: (await response.text()).slice(0, 500) },
    });
  }
}

/** Removes one custom attribute from one node; a node or attribute Tailscale no longer has is gone already. */
export async function deleteTailscaleAttribute(settings: TailscaleSettings, node: string, key: string) {
  const response = await fetch(`${settings.apiUrl}/api/v2/device/${encodeURIComponent(node)}/attributes/${encodeURIComponent(key)}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${settings.apiKey}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok && response.status !== 404) {
    throw new SimrootError(
      "integration.tailscale_failed",
      "unavailable",
      `Tailscale answered ${response.status} deleting ${key} on ${node}`,
      {
        detail: { status: response.status, body: (await response.text()).slice(0, 500) },
      },
    );
  }
}

const pushedKey = (tenantId: string, deviceId: string) => ({ pk: `I#${tenantId}#tailscale`, sk: `pushed#${deviceId}` });

/** Writes down what a run is about to change in the tailnet, before it does (`intendDelivery`). */
type Intend = (planned: readonly string[]) => Promise<void>;

/** How a plan names a node's release, and an attribute set on a node with its value. */
const releasePlan = (node: string) => `released:${node}`;
const setPlan = (node: string, name: string, value: string | number | boolean) => `set:${node}/${name}=${JSON.stringify(value)}`;

/** What earlier attempts of a delivery set out to change (their plans, in order): the nodes released, and what was set where. */
function plannedChanges(planned: readonly string[]) {
  const released: string[] = [];
  const set = new Map<string, string | number | boolean>();
  let node: string | undefined;
  for (const entry of planned) {
    if (entry.startsWith("released:")) released.push(entry.slice("released:".length));
    if (!entry.startsWith("set:")) continue;
    // A name (custom:…) holds no '/', a value (a state, a number, a boolean, as JSON) no '=': a node may hold either.
    const target = entry.slice("set:".length, entry.lastIndexOf("="));
    node = target.slice(0, target.lastIndexOf("/"));
    set.set(target.slice(target.lastIndexOf("/") + 1), JSON.parse(entry.slice(entry.lastIndexOf("=") + 1)) as string | number | boolean);
  }
  return { released, node, set };
}

/**
 * Of what earlier attempts planned, what the tailnet shows done now: a plan is written before its requests, which
 * Tailscale may have refused (review 141: a suspension's push, refused, then the device reinstated, was recorded by the
 * suspension's redelivery as setting the state and score it never set). A value set is done if the node this run left
 * in line holds it; a node released, if it is not that node. The record still lists the whole plan apart (`planned`).
 */
function confirmedChanges(
  earlier: ReturnType<typeof plannedChanges>,
  held: { readonly node: string; readonly attributes: PostureAttributes } | undefined,
) {
  const holds = (name: string, value: string | number | boolean) =>
    held !== undefined && earlier.node === held.node && held.attributes[name as `custom:${string}`] === value;
  return {
    node: earlier.node,
    set: new Map([...earlier.set].filter(([name, value]) => holds(name, value))),
    released: earlier.released.filter((node) => node !== held?.node),
  };
}

/**
 * The node simroot last pushed the device's posture to, when the device's label now names another or none: its
 * attributes are removed, and the record forgets it (review 133: a gateway replaced, its label moved to the new node,
 * kept `active`, score 90, for good, and passed `custom:simrootScore >= 60` after the device was revoked). Returns the
 * node released. A failure throws: the bus gives the event again, and the record still names the node.
 */
async function releaseFormerNode(
  ports: Ports,
  settings: TailscaleSettings,
  key: { pk: string; sk: string },
  node: string | undefined,
  intend: Intend,
) {
  const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: key, ConsistentRead: true }));
  const former = typeof Item?.node === "string" ? Item.node : undefined;
  if (former === undefined || former === node) return undefined;
  await intend([releasePlan(former)]);
  for (const name of postureAttributeNames) await deleteTailscaleAttribute(settings, former, name);
  // Forgotten unless another run claimed a node since (a newer label's run, which pushes whole to its own node).
  await ports.db
    .send(
      new UpdateCommand({
        TableName: ports.tables.control,
        Key: key,
        UpdateExpression: "REMOVE #node, pushedRevision, #attributes SET claimToken = :token",
        ConditionExpression: "#node = :former",
        ExpressionAttributeNames: { "#node": "node", "#attributes": "attributes" },
        ExpressionAttributeValues: { ":former": former, ":token": randomUUID() },
      }),
    )
    .catch((error: unknown) => {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    });
  return former;
}

/** How often a run pushes again when the device changed while it pushed (each change's own run pushes it too). */
const maxPushRounds = 3;

/**
 * Pushes the device's posture for `event` to its tailnet node. Events of one device reach this on several instances at
 * once (each its own invocation), and Tailscale keeps what arrives last: so each push first claims the device revision it
 * pushes in the record (conditional: none newer claimed), and a run whose push may have landed after a newer one's (the
 * device's revision moved while it pushed) pushes the newest posture again, whole (review 112: a reinstatement's push
 * arriving after the revocation's left a revoked device `active`, score 90, in Tailscale, for good). The record keeps
 * apart what was claimed and what Tailscale confirmed: a push that failed, or only partly, leaves its claim unconfirmed,
 * and the bus's retry pushes every attribute again (review 114: a claim taken as pushed left a revoked device trusted
 * when Tailscale answered 503 once). Returns what this run changed.
 */
export async function syncPostureToTailscale(
  ports: Ports,
  settings: TailscaleSettings,
  event: DomainEvent,
  options: { onlyChanged?: boolean } = {},
): Promise<string[]> {
  if (event.tenantId !== settings.tenantId) return [];
  const delivery = await readDelivery(ports, event.tenantId, "tailscale", event.id);
  if (delivery.delivered) return [];
  let outcome: Awaited<ReturnType<typeof push>>;
  try {
    outcome = await push(ports, settings, event, options.onlyChanged ?? true);
  } catch (error) {
    // A duplicate delivery's run recorded this event while this one planned: nothing is left to do.
    if (isSimrootError(error) && error.code === "integration.already_delivered") return [];
    throw error;
  }
  const { set, pushed, released, held } = outcome;
  // What an earlier attempt set out to change, whose record failed to commit: the tailnet holds it now, and this run may
  // have found nothing left to do (review 133). Each change is recorded once.
  const earlier = confirmedChanges(plannedChanges(delivery.planned), held);
  const names = [...new Set([...earlier.set.keys(), ...set])];
  const releasedNode = released ?? earlier.released.at(-1);
  if (names.length > 0 || releasedNode !== undefined) {
    await recordDelivery(ports, systemContext(event.tenantId, "posture-sync", event.requestId), "tailscale", event, {
      deviceId: event.subject,
      ...(names.length > 0
        ? { node: pushed?.node ?? earlier.node, set: names, attributes: pushed?.attributes ?? Object.fromEntries(earlier.set) }
        : {}),
      ...(releasedNode === undefined ? {} : { released: releasedNode }),
      ...(delivery.planned.length > 0 ? { planned: delivery.planned } : {}),
    });
  }
  return [...(released === undefined ? [] : [`released:${released}`]), ...set];
}

/** The pushes of one run, until the device holds still; what it set, pushed and released. */
async function push(ports: Ports, settings: TailscaleSettings, event: DomainEvent, onlyChanged: boolean) {
  const intend: Intend = (planned) => intendDelivery(ports, event.tenantId, "tailscale", event.id, planned);
  // `onlyChanged: false` (the bench's baseline) sends every attribute and keeps no record.
  const set = new Set<string>();
  let pushed: { deviceId: string; node: string; attributes: PostureAttributes; revision: number } | undefined;
  // The node this run left in line, and what it holds (pushed, or found confirmed): what earlier plans are checked by.
  let held: { node: string; attributes: PostureAttributes } | undefined;
  let token: string | undefined;
  let released: string | undefined;
  for (let round = 0; ; round++) {
    const stored = await readDevice(ports, event.tenantId, event.subject);
    const node = stored?.device.labels[tailscaleNodeLabel];
    if (stored && onlyChanged && round === 0)
      released = await releaseFormerNode(ports, settings, pushedKey(event.tenantId, stored.device.id), node, intend);
    // The label moved while this run pushed to the node it named: that push may have landed after the move's own run
    // released the node, and this run's next claim takes the record to the new node, which then forgets the former
    // (review 134: it kept `active`, score 90, for good). This run releases it itself, its push settled.
    if (onlyChanged && pushed !== undefined && pushed.node !== node) {
      await intend([releasePlan(pushed.node)]);
      for (const name of postureAttributeNames) await deleteTailscaleAttribute(settings, pushed.node, name);
      released = pushed.node;
    }
    if (!stored || !node) break;
    const revision = stored.device.revision;
    // What this run pushed is the device as it is now: done.
    if (pushed?.revision === revision) break;
    const key = pushedKey(event.tenantId, stored.device.id);
    if (round === maxPushRounds) {
      // Still changing: what this run pushed may land last, so the next run pushes whole, and this event is retried
      // (review 116: a run that stopped at its round limit recorded the delivery, and left a stale posture).
      await unconfirm(ports, key);
      throw new SimrootError(
        "integration.tailscale_busy",
        "unavailable",
        `Device ${stored.device.id} kept changing while its posture was pushed`,
      );
    }
    const attributes = postureAttributes(postureOf(stored.device));
    let changed = Object.entries(attributes);
    if (onlyChanged) {
      const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: key, ConsistentRead: true }));
      const claimed = typeof Item?.revision === "number" ? Item.revision : undefined;
      // A newer revision's run claimed the node: it pushes that posture (or its event is retried until it does).
      if (Item?.node === node && claimed !== undefined && claimed > revision) break;
      // Confirmed as the last claim: what Tailscale holds. Else (a push failed, or pushes raced: a later round) all of it.
      const confirmed = Item?.node === node && pushed === undefined && Item.pushedRevision === claimed;
      const last = confirmed ? ((Item.attributes ?? {}) as Record<string, unknown>) : {};
      changed = changed.filter(([name, value]) => last[name] !== value);
      if (changed.length === 0 && claimed !== undefined && claimed >= revision) {
        held = { node, attributes };
        break;
      }
      token = await claim(ports, key, node, revision);
      if (token === undefined) break;
    }
    if (changed.length > 0) {
      await intend(changed.map(([name, value]) => setPlan(node, name, value)));
      // Every request settles before the run ends: none of them is left to land after a retry's.
      const outcomes = await Promise.allSettled(changed.map(([name, value]) => setTailscaleAttribute(settings, node, name, value)));
      const failed = outcomes.find((outcome) => outcome.status === "rejected");
      if (failed) {
        // Some of them may have landed, after a newer run's: no confirmation stands (a newer run's pending one
        // included), and the retry pushes whole (review 116: a run that confirmed before this one's late request
        // landed left a revoked device `active`).
        if (onlyChanged) await unconfirm(ports, key);
        throw failed.reason;
      }
    }
    if (onlyChanged) await confirm(ports, key, attributes, revision, token!);
    for (const [name] of changed) set.add(name);
    pushed = { deviceId: stored.device.id, node, attributes, revision };
    held = pushed;
    if (!onlyChanged) break;
  }
  return { set, pushed, released, held };
}

/**
 * Claims the revision a run is about to push, unless a newer one is claimed: the claim's token, undefined when a newer
 * one is claimed. A claim takes over any confirmation pending (its token changes).
 */
async function claim(ports: Ports, key: { pk: string; sk: string }, node: string, revision: number): Promise<string | undefined> {
  const token = randomUUID();
  try {
    await ports.db.send(
      new UpdateCommand({
        TableName: ports.tables.control,
        Key: key,
        UpdateExpression: "SET #node = :node, revision = :revision, claimToken = :token, claimedAt = :at",
        ConditionExpression: "attribute_not_exists(revision) OR revision <= :revision OR #node <> :node",
        ExpressionAttributeNames: { "#node": "node" },
        ExpressionAttributeValues: { ":node": node, ":revision": revision, ":token": token, ":at": ports.now().toISOString() },
      }),
    );
    return token;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}

/** Records what Tailscale took for the claim, unless another claim (or a failed push) came since: its run records its own. */
async function confirm(ports: Ports, key: { pk: string; sk: string }, attributes: PostureAttributes, revision: number, token: string) {
  await ports.db
    .send(
      new UpdateCommand({
        TableName: ports.tables.control,
        Key: key,
        UpdateExpression: "SET #attributes = :attributes, pushedRevision = :revision, #at = :at",
        ConditionExpression: "claimToken = :token",
        ExpressionAttributeNames: { "#attributes": "attributes", "#at": "at" },
        ExpressionAttributeValues: { ":attributes": attributes, ":revision": revision, ":token": token, ":at": ports.now().toISOString() },
      }),
    )
    .catch((error: unknown) => {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    });
}

/** What Tailscale holds is unknown (a push failed, or may land late): the next run pushes every attribute. */
async function unconfirm(ports: Ports, key: { pk: string; sk: string }) {
  await ports.db
    .send(
      new UpdateCommand({
        TableName: ports.tables.control,
        Key: key,
        UpdateExpression: "SET claimToken = :token REMOVE pushedRevision",
        ConditionExpression: "attribute_exists(pk)",
        ExpressionAttributeValues: { ":token": randomUUID() },
      }),
    )
    .catch((error: unknown) => {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    });
}
