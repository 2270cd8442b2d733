/**
 * IP leases: which device held an address when. Each session with an address leaves a start
 * item at its `since` and an end item when it closes, under the address, sorted by time, so
 * "who held 10.46.1.22 at 09:00?" is one descending query, whatever order the facts arrived in.
 * The edges are recorded in the change's audit record; the history reader of the audit stream writes the items from it.
 */
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import type { LeaseEdge } from "../ledger/change.ts";
import type { Ports } from "../ports.ts";
import { byTime, type Fact } from "./fact.ts";
import type { IdentityState, Session } from "./identity-state.ts";
import { leasePartition, leaseSortKey } from "./lease-item.ts";

export { leaseItem, leasePartition } from "./lease-item.ts";

const addressesOf = (session: Session) => [session.ipv4, session.ipv6].filter((address): address is string => address !== undefined);

/** The lease edges a visible change implies: sessions that opened start, sessions that closed (at `at`) end. */
export function leaseChanges(before: IdentityState, after: IdentityState, at: string): LeaseEdge[] {
  const edges: LeaseEdge[] = [];
  const key = (session: Session, address: string) => `${address}|${session.since}`;
  const held = (state: IdentityState) =>
    new Map(
      Object.values(state.sessions).flatMap((session) =>
        session ? addressesOf(session).map((address) => [key(session, address), { session, address }] as const) : [],
      ),
    );
  const was = held(before);
  const is = held(after);
  for (const [id, { session, address }] of is)
    if (!was.has(id)) edges.push({ address, at: session.since, edge: "start", bearer: session.bearer });
  for (const [id, { session, address }] of was) if (!is.has(id)) edges.push({ address, at, edge: "end", bearer: session.bearer });
  return edges;
}

/** One edge per lease item: the same edge given twice (by the visible change and by a recorded session) is one. */
export function distinctEdges(edges: readonly LeaseEdge[]): LeaseEdge[] {
  return [...new Map(edges.map((edge) => [`${edge.address}|${leaseSortKey(edge.at, edge.edge, "", edge.bearer)}`, edge])).values()];
}

/**
 * A session fact the fold absorbed (a later fact already closed or replaced it): when did it
 * end? The first later fact that closes its bearer, as the fold would apply it.
 */
export function absorbedSessionEnd(
  facts: readonly Fact[],
  opened: Fact & { type: "sim.attached" | "bearer.switched" },
): string | undefined {
  const bearer = opened.data.bearer;
  for (const later of facts.filter((known) => byTime(known, opened) > 0).sort(byTime)) {
    if (later.type === "device.revoked") return later.at;
    if (later.type === "sim.detached" && (later.data.bearer === undefined || later.data.bearer === bearer)) return later.at;
    if (later.type === "sim.attached" && later.data.bearer === bearer) return later.at;
    if (later.type === "bearer.switched" && (later.data.from === undefined || later.data.from === bearer || later.data.bearer === bearer))
      return later.at;
  }
  return undefined;
}

/**
 * The sessions of the window that `fact` closes earlier than the window without it did: a detach, or an attach or a
 * switch on the same bearer, that arrived after the next attach had ended the session (review 125: the session's lease
 * kept the later end, and "who held the address" named the device for a time it held it no more). A session `fact`
 * closes that was open before is the visible change's, not one of these.
 */
export function shortenedSessions(
  before: readonly Fact[],
  after: readonly Fact[],
  fact: Fact,
): { opening: Fact & { type: "sim.attached" | "bearer.switched" }; until: string }[] {
  const shortened: { opening: Fact & { type: "sim.attached" | "bearer.switched" }; until: string }[] = [];
  for (const opening of after) {
    if ((opening.type !== "sim.attached" && opening.type !== "bearer.switched") || byTime(opening, fact) >= 0) continue;
    const until = absorbedSessionEnd(after, opening);
    const was = absorbedSessionEnd(before, opening);
    if (until === fact.at && was !== undefined && until < was) shortened.push({ opening, until });
  }
  return shortened;
}

/** The device that held `address` at `at`: the latest start not ended since. */
export async function leaseHolder(ports: Ports, tenantId: string, address: string, at: string): Promise<string | undefined> {
  /** Sessions (a device's, on a bearer) whose end the query passed: a device may hold one address on two bearers at once. */
  const ended = new Set<string>();
  /** The device whose latest start the query passed, ended: an older start of its own may still hold the address. */
  let gaveUp: string | undefined;
  let cursor: Record<string, unknown> | undefined;
  do {
    const page = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.identity,
        KeyConditionExpression: "pk = :pk AND sk <= :until",
        ExpressionAttributeValues: { ":pk": leasePartition(tenantId, address), ":until": `${at}#~` },
        ScanIndexForward: false,
        Limit: 25,
        ExclusiveStartKey: cursor,
      }),
    );
    for (const item of page.Items ?? []) {
      const deviceId = String(item.deviceId);
      const session = `${deviceId}|${item.bearer ?? ""}`;
      if (item.edge === "end") ended.add(session);
      // An older holder's lease ended when this device's began (review 125: per device, an end of one bearer's
      // session hid the other bearer's, still open on the same address).
      else if (gaveUp !== undefined && deviceId !== gaveUp) return undefined;
      else if (!ended.has(session)) return deviceId;
      else gaveUp = deviceId;
    }
    cursor = page.LastEvaluatedKey;
  } while (cursor);
  return undefined;
}

/** Lease edges read at most over one window (`heldByAnotherWithin`), in one page. */
export const maxWindowEdges = 1000;

/**
 * Whether a device other than `holder` held `address` at some moment from `from` to `until`: a session of its own on the
 * address began or ended in between (review 132: an address that went from A to B and back to A within one flow window
 * was read as A's at both ends, and B's traffic taught A, or flagged A, while B escaped). A session that ended as the
 * window began held none of it. The store returns only the edges of other devices (a filter), so the holder's own edges
 * cost their bytes read and nothing else: a window's first `maxWindowEdges` edges are searched (read units grow with
 * the bytes read, before the filter, and are bounded), where the first 100 were, and a device flapping its session 100 times
 * early in the window no longer hides one that held the address after it. A device cannot hide its own traffic by
 * flapping until its window reads as no one device's either: another device's traffic is credited to it only behind
 * 1,000 edges of its own in one window, several a second for a five-minute window, which a radio attach does not do.
 */
export async function heldByAnotherWithin(
  ports: Ports,
  tenantId: string,
  address: string,
  holder: string,
  from: string,
  until: string,
): Promise<boolean> {
  let read = 0;
  let cursor: Record<string, unknown> | undefined;
  do {
    const page = await ports.db.send(
      new QueryCommand({
        TableName: ports.tables.identity,
        // At one instant an end sorts before a start (lease-item.ts): from `#1`, the window's first instant's starts only.
        KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :until",
        FilterExpression: "deviceId <> :holder",
        ExpressionAttributeValues: {
          ":pk": leasePartition(tenantId, address),
          ":from": `${from}#1`,
          ":until": `${until}#~`,
          ":holder": holder,
        },
        ProjectionExpression: "deviceId",
        // The limit counts the edges read, the holder's among them (a filter applies after it).
        Limit: maxWindowEdges - read,
        ExclusiveStartKey: cursor,
      }),
    );
    if ((page.Items ?? []).length > 0) return true;
    read += page.ScannedCount ?? 0;
    cursor = page.LastEvaluatedKey;
  } while (cursor && read < maxWindowEdges);
  return false;
}
