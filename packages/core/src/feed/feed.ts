/**
 * Serves the signed policy feed. Deltas are the entries of the tenant's feed version records
 * (the sequencer's, over the ledger shards) after a version (a poll costs O(changes), never O(fleet)); a snapshot lists the current
 * devices, IP bindings, policies, grants and settings, page by page, at a version from which
 * deltas continue. Long polls wait on this process's commits and on the tenant's head.
 */
import { tenantSettings } from "../access/tenant-settings.ts";
import { enforcementView, enforcementViewSchema } from "../device/device.ts";
import { SimrootError } from "../error.ts";
import { canonicalJson } from "../ledger/chain.ts";
import { feedVersionAttributes, feedVersionsAfter } from "../ledger/feed-version.ts";
import { anchoredVersions } from "./anchor.ts";
import { enforcementSettingsOf, readEnforcement } from "../policy/enforcement-store.ts";
import { grantOf, storedGrant } from "../policy/grant-store.ts";
import { allPolicyItems } from "../policy/records.ts";
import { policyRuleOf, storedPolicy } from "../policy/store.ts";
import type { Ports } from "../ports.ts";
import { replayPage, replayStart } from "./snapshot-replay.ts";
import { phasePartitions, phases, snapshotListing, type SnapshotPhase } from "./snapshot-listing.ts";
import { inScope, scopeDeltas, scopeSnapshotBindings, type FeedScope } from "./scope.ts";
import { noticeDeltaMaxBytes, type NoticeSealer } from "./notifier.ts";
import type { FeedSigner } from "./signer.ts";
import { changeAfter, headVersion, readHead, recentDeltas, seenVersion, type HeadRead } from "./watch.ts";
import { servedEntries, type ReadEntry } from "./read-entry.ts";
import { readFeedEpoch } from "./epoch-read.ts";
import {
  bindingValue,
  contentHash,
  cursorHash,
  headBytes,
  maxHeadLifetimeSeconds,
  type FeedEntry,
  type FeedHead,
  type FeedResponse,
  type SignedHead,
} from "./wire.ts";

/** A PEP further behind than this takes a snapshot instead of replaying deltas. */
export const deltaRetentionSeconds = 7 * 24 * 60 * 60;
/**
 * How long a head stays valid: PEPs fail closed this long after losing the control plane, and
 * someone on the path who replays the current genuine head withholds a change at most this
 * long (plus the PEP's clock-skew tolerance). Heads are shared per tenant (and selector) and
 * version, not signed per poll, so a short lifetime costs no signatures per idle PEP.
 */
export const headLifetimeSeconds = maxHeadLifetimeSeconds;

const snapshotRequired = (why: string) =>
  new SimrootError("feed.snapshot_required", "conflict", `Take a snapshot: ${why}`, { detail: { status: 410 } });

export async function signHead(
  signer: FeedSigner,
  fields: Omit<FeedHead, "contentHash" | "issuedAt" | "expiresAt">,
  entries: readonly FeedEntry[],
  now: Date,
): Promise<SignedHead> {
  const lifetime = Math.min(headLifetimeSeconds, maxHeadLifetimeSeconds);
  const head: FeedHead = {
    ...fields,
    contentHash: contentHash(entries),
    issuedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + lifetime * 1000).toISOString(),
  };
  return { head, signature: await signer.sign(headBytes(head)), keyId: signer.keyId };
}

/**
 * The versions after `since` up to the head `upTo` (a sequencer writes a version before it moves the head
 * to it: a version past the head is not served until the head names it, so no PEP holds a version the head
 * has not reached).
 */
async function readDeltas(ports: Ports, tenantId: string, since: number, limit: number, upTo: number) {
  const result = await feedVersionsAfter(ports.db, ports.tables, tenantId, since, feedVersionAttributes, { limit, upTo });
  // Versions after `since` that are no longer stored (their TTL, or a restore): deltas cannot bridge them.
  const gap = result.items.some((record, index) => Number(record.version) !== since + 1 + index);
  // Served only once they are found in the chain that ends at the feed head (anchor.ts); across a gap, nothing.
  const records = gap ? [] : await anchoredVersions(ports, tenantId, result.items);
  const entries: ReadEntry[] = records.flatMap((record) =>
    ((record.entries ?? []) as Omit<ReadEntry, "version">[]).map((entry) => ({
      version: Number(record.version),
      kind: entry.kind,
      key: entry.key,
      value: entry.value,
      ...(entry.labelsBefore ? { labelsBefore: entry.labelsBefore } : {}),
    })),
  );
  return {
    entries,
    version: records.length > 0 ? Number(records.at(-1)!.version) : since,
    last: result.cursor === undefined,
    oldest: records[0]?.time as string | undefined,
    gap,
  };
}

export interface DeltaQuery {
  readonly since: number;
  readonly limit: number;
  readonly waitMs: number;
  /** The version the PEP holds and names in If-None-Match: an idle poll is then answered "not modified". */
  readonly ifNoneMatch?: number;
  /** Aborts the wait when the PEP goes away. */
  readonly signal?: AbortSignal;
  /** Narrows the feed to the devices this selector matches. */
  readonly scope?: FeedScope;
}

export type DeltaAnswer =
  /** `body`, when given, is `response` serialized (shared by every poll the response answers). */
  | { readonly kind: "response"; readonly response: FeedResponse; readonly body?: string }
  | { readonly kind: "not_modified"; readonly signed: SignedHead };

/**
 * PEPs poll in herds: a thousand of them wake on the same commit and ask for the same
 * deltas. Identical reads in flight (or finished within `ttlMs`) share one store round trip,
 * so a change costs the store O(1) reads, not O(PEPs).
 */
const shared = new WeakMap<object, Map<string, { until: number; value: Promise<unknown> }>>();
let lastSweep = 0;
function sharedRead<Value>(
  ports: Ports,
  key: string,
  ttlMs: number,
  read: () => Promise<Value>,
  keep: (value: Value) => boolean = () => true,
): Promise<Value> {
  let cache = shared.get(ports.db);
  if (!cache) shared.set(ports.db, (cache = new Map()));
  const now = Date.now();
  const hit = cache.get(key);
  if (hit && hit.until >= now) return hit.value as Promise<Value>;
  // Bounded: settled entries live at most a second; past 1,000 the expired go, past 10,000 all.
  if (cache.size > 1_000 && now - lastSweep > 100) {
    lastSweep = now;
    for (const [stale, { until }] of cache) if (until < now) cache.delete(stale);
  }
  if (cache.size > 10_000) cache.clear();
  const value = read();
  const entry = { until: Number.POSITIVE_INFINITY, value };
  cache.set(key, entry);
  const settle = (settled: Value) => {
    if (keep(settled)) entry.until = Date.now() + ttlMs;
    else cache.delete(key);
  };
  value.then(settle, () => cache.delete(key));
  return value;
}

/**
 * The tenant's head as far as a poll at `since` needs it: the newest version this process saw
 * committed when that is already past `since`, else the head shared by concurrent polls (read
 * at most every 100 ms), read afresh only before a version is called ahead of it.
 */
async function currentHead(ports: Ports, tenantId: string, since: number): Promise<number> {
  const seen = seenVersion(ports, tenantId);
  if (since < seen) return seen;
  const shared = Math.max(seen, await sharedHead(ports, tenantId));
  return since > shared ? headVersion(ports, tenantId) : shared;
}

const sharedHead = (ports: Ports, tenantId: string) => sharedRead(ports, `head|${tenantId}`, 100, () => headVersion(ports, tenantId));

/** The tenant's feed epoch, read at most every second (an advance reaches every head within it). */
const sharedEpoch = (ports: Ports, tenantId: string) => sharedRead(ports, `epoch|${tenantId}`, 1000, () => readFeedEpoch(ports, tenantId));

type Deltas = Awaited<ReturnType<typeof readDeltas>>;
const noDeltas = (since: number): Deltas => ({ entries: [], version: since, last: true, oldest: undefined, gap: false });

/**
 * The deltas after `since`, holding at least version `atLeast`: from this process's latest
 * commits when they cover them, else from the store. Deltas read that made progress may be
 * shared briefly (later ones only add to them); "nothing yet" only while in flight. A shared
 * read that began before `atLeast` committed is followed by one more, shared by every poll
 * that learned of the same commit.
 */
async function sharedDeltas(ports: Ports, tenantId: string, since: number, limit: number, atLeast: number): Promise<Deltas> {
  const recent = recentDeltas(ports, tenantId, since, limit);
  if (recent && recent.version >= atLeast) return { ...recent, last: true, oldest: undefined, gap: false };
  const key = `deltas|${tenantId}|${since}|${limit}`;
  const progressed = (deltas: Deltas) => deltas.version > since;
  const deltas = await sharedRead(ports, key, 250, () => readDeltas(ports, tenantId, since, limit, atLeast), progressed);
  if (deltas.version >= atLeast || !deltas.last) return deltas;
  return sharedRead(ports, `${key}|${atLeast}`, 250, () => readDeltas(ports, tenantId, since, limit, atLeast), progressed);
}

export async function feedDeltas(ports: Ports, signer: FeedSigner, tenantId: string, query: DeltaQuery): Promise<DeltaAnswer> {
  const head = await currentHead(ports, tenantId, query.since);
  if (query.since > head) throw snapshotRequired(`version ${query.since} is ahead of this control plane (${head})`);
  // At the head there is nothing to read: wait for the next commit (or answer "nothing yet").
  let deltas = query.since < head ? await sharedDeltas(ports, tenantId, query.since, query.limit, head) : noDeltas(query.since);
  if (deltas.version === query.since && query.waitMs > 0) {
    const committed = await changeAfter(ports, tenantId, query.since, query.waitMs, query.signal);
    if (committed !== undefined) deltas = await sharedDeltas(ports, tenantId, query.since, query.limit, committed);
  }
  const now = ports.now();
  // Versions missing after `since` (expired by their TTL, or a restore), or none at all below a head past it: no delta bridges them.
  if (deltas.gap || (query.since < head && deltas.version === query.since && deltas.last)) {
    throw snapshotRequired(`the versions after ${query.since} are no longer kept`);
  }
  if (deltas.oldest && Date.parse(deltas.oldest) < now.getTime() - deltaRetentionSeconds * 1000) {
    throw snapshotRequired(`version ${query.since} is older than the ${deltaRetentionSeconds / 86400}-day delta history`);
  }
  const scope = query.scope;
  const epoch = await sharedEpoch(ports, tenantId);
  const fields = {
    tenantId,
    epoch,
    kind: "delta" as const,
    since: query.since,
    version: deltas.version,
    page: 0,
    last: deltas.last,
    ...(scope ? { scope: scope.text } : {}),
  };
  const herd = `${tenantId}|${epoch}|${scope?.text ?? ""}|${query.since}|${query.limit}`;
  if (deltas.version > query.since) {
    // A herd woken by one commit gets one response: the same signed head, entries and bytes, issued less than a second ago.
    const found = deltas;
    return sharedRead(ports, `response|${herd}|${found.version}|${found.last}`, 1000, async (): Promise<DeltaAnswer> => {
      const entries = scope ? await scopeDeltas(ports, tenantId, scope, found.entries, "deltas") : servedEntries(found.entries);
      const response = { signed: await signHead(signer, fields, entries, now), entries };
      return { kind: "response", response, body: JSON.stringify(response) };
    });
  }
  // PEPs whose waits end together (idle herds) share the re-issued head too.
  const signed = await sharedRead(ports, `idle|${herd}`, 1000, () => signHead(signer, fields, [], now));
  if (query.ifNoneMatch === query.since) return { kind: "not_modified", signed };
  return { kind: "response", response: { signed, entries: [] } };
}

/**
 * Signs the delta a push notice carries (feed/notifier.ts): the answer a poll of the whole tenant from `since` would
 * get, issued now. None when it could not fit in a notice (no signature is spent on it): PEPs then poll, as do PEPs
 * scoped to a label selector (their head names the selector, this one none).
 */
export function noticeSealer(ports: Ports, signer: () => Promise<FeedSigner>): NoticeSealer {
  return async ({ tenantId, since, version, entries }) => {
    const body = JSON.stringify(entries);
    // Entries gzip to a quarter or less (notifier.ts `noticePayload`): past 4 notices' worth of JSON, no notice holds them.
    if (Buffer.byteLength(body) > 4 * noticeDeltaMaxBytes) return undefined;
    // As a read of the version records gives them back (plain JSON values), so the content hash is the PEP's.
    const plain = JSON.parse(body) as FeedEntry[];
    const epoch = await sharedEpoch(ports, tenantId);
    const fields = { tenantId, epoch, kind: "delta" as const, since, version, page: 0, last: true };
    return { signed: await signHead(await signer(), fields, plain, ports.now()), entries: plain };
  };
}

interface SnapshotCursor {
  readonly version: number;
  readonly page: number;
  /** Revocations first (terminal: a PEP may enforce them before the snapshot completes), then every device, then the bindings. */
  readonly phase: SnapshotPhase;
  readonly start?: Record<string, unknown>;
  /** Which of the phase's listing partitions `start` is in (`listingPartitions`; absent: the first). */
  readonly stripe?: number;
  /** In the replay phase: the feed version replayed up to. */
  readonly replayed?: number;
  /** The scope the snapshot was begun with: its pages cannot be continued under another. */
  readonly scope?: string;
  /** When the snapshot read its version (epoch ms): the replay's window counts back from it, or from the version's own time when that is earlier (snapshot-replay.ts). */
  readonly began?: number;
}

/**
 * A revocation marker's device view: its enforcement view and the addresses its revocation released that no device was
 * bound to since (`lastAddresses`, a map the bind of one to another device removes it from: identity/apply-fact.ts).
 */
function revokedMarkerView(item: Record<string, unknown>): { id: string; labels?: unknown } & Record<string, unknown> {
  const { lastAddresses, ...view } = item.view as { id: string; labels?: unknown; lastAddresses?: unknown };
  const addresses = Array.isArray(lastAddresses) ? lastAddresses : Object.keys(lastAddresses ?? {}).sort();
  return addresses.length === 0 ? view : { ...view, lastAddresses: addresses };
}

/** The first of the bindings' partitions of the table (`phasePartitions`: the index's come first). */
const firstTableStripe = phasePartitions("", "bindings").findIndex((partition) => partition.table);

/** A narrowed snapshot page stops after reading this many items per entry it may hold, full or not. */
const scanPerEntry = 10;

/** A start key names exactly the key attributes of what it was read from, each a string (a store key, not anything). */
const keyShaped = (start: unknown, names: readonly string[]) =>
  typeof start === "object" &&
  start !== null &&
  !Array.isArray(start) &&
  Object.keys(start).length === names.length &&
  names.every((name) => typeof (start as Record<string, unknown>)[name] === "string");
const encode = (cursor: SnapshotCursor) => Buffer.from(JSON.stringify(cursor)).toString("base64url");
function decode(cursor: string, tenantId: string, scope: FeedScope | undefined): SnapshotCursor {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as SnapshotCursor;
    const start = parsed.start as { pk?: string; gsi1pk?: string } | undefined;
    const sameScope = (parsed.scope ?? "") === (scope?.text ?? "");
    const known = phases.includes(parsed.phase);
    const stripe = parsed.stripe ?? 0;
    const partitions = known ? phasePartitions(tenantId, parsed.phase) : [];
    const stripeKnown = Number.isInteger(stripe) && stripe >= 0 && (parsed.phase === "replay" || stripe < partitions.length);
    if (
      Number.isSafeInteger(parsed.version) &&
      parsed.version >= 0 &&
      // A cursor is given with a page to read next: page 1 on (page 0 is the snapshot's first, asked without one).
      Number.isSafeInteger(parsed.page) &&
      parsed.page >= 1 &&
      (parsed.began === undefined || Number.isFinite(parsed.began)) &&
      // A replay position is a version at most the snapshot's (review 92: a string or a fraction reached the store, 500).
      (parsed.replayed === undefined ||
        (parsed.phase === "replay" &&
          Number.isSafeInteger(parsed.replayed) &&
          parsed.replayed >= 0 &&
          parsed.replayed <= parsed.version)) &&
      sameScope &&
      known &&
      stripeKnown &&
      (start === undefined ||
        (keyShaped(start, partitions[stripe]!.table ? ["pk", "sk"] : ["pk", "sk", "gsi1pk", "gsi1sk"]) &&
          (partitions[stripe]!.table ? start.pk === partitions[stripe]!.key : start.gsi1pk === partitions[stripe]!.key)))
    ) {
      return parsed;
    }
  } catch {}
  throw new SimrootError("request.invalid_cursor", "input", "The cursor is not one this feed returned", {
    issues: [{ path: "cursor", message: "not a snapshot cursor" }],
  });
}

/**
 * The lowest replay position a genuine snapshot of `version` can hand out: where its replay begins at the earliest
 * (counted from `replayClockAllowanceMs` before the version's own time, whatever the clocks), less `replayFloorSlackMs`
 * (review 94). Depends on the version alone:
 * kept per process (`maxReplayFloors`), as each replay page checks it (a scan of the window's versions each time).
 */
async function replayFloor(ports: Ports, tenantId: string, version: number): Promise<number> {
  let floors = replayFloors.get(ports.db);
  if (!floors) replayFloors.set(ports.db, (floors = new Map()));
  const key = `${ports.tables.audit}|${tenantId}|${version}`;
  const known = floors.get(key);
  if (known !== undefined) return known;
  const floor = await replayStart(ports, tenantId, version, 0, replayFloorSlackMs);
  floors.set(key, floor);
  if (floors.size > maxReplayFloors) floors.delete(floors.keys().next().value as string);
  return floor;
}
const replayFloors = new WeakMap<object, Map<string, number>>();
const maxReplayFloors = 1_000;
const replayFloorSlackMs = 2_000;

const invalidReplayPosition = () =>
  new SimrootError("request.invalid_cursor", "input", "The cursor is not one this feed returned", {
    issues: [{ path: "cursor", message: "a replay position outside the snapshot's replay window" }],
  });

/**
 * The replayed entries a page needs: per key only the last (applied in order, it supersedes the
 * earlier ones), and not when the page already says that very value of the key (its last entry so far).
 */
function withoutRepeats(listed: readonly FeedEntry[], replayed: readonly FeedEntry[]): FeedEntry[] {
  const id = (entry: FeedEntry) => `${entry.kind}|${entry.key}`;
  // An address a revoked device released and another device was bound to later: no longer the revoked device's (the
  // marker listed no longer names it), though the bind in between is replaced by the later entries of its key below.
  const lastBound = new Map<string, number>();
  for (const [index, entry] of replayed.entries()) if (entry.kind === "binding" && entry.value !== null) lastBound.set(entry.key, index);
  const replay = replayed.map((entry, index) => {
    const addresses = entry.kind === "device" ? entry.value?.lastAddresses : undefined;
    if (!Array.isArray(addresses) || !addresses.some((address) => (lastBound.get(address) ?? -1) > index)) return entry;
    return { ...entry, value: { ...entry.value, lastAddresses: addresses.filter((address) => (lastBound.get(address) ?? -1) < index) } };
  });
  // What the page says of each key so far: its last entry (an earlier one, since replaced, is no repeat of it).
  const current = new Map(listed.map((entry) => [id(entry), canonicalJson(entry.value)]));
  const last = new Map(replay.map((entry) => [id(entry), entry]));
  return replay.filter((entry) => last.get(id(entry)) === entry && current.get(id(entry)) !== canonicalJson(entry.value));
}

/** One page of the snapshot (of the devices in `scope`, when given). The first page also carries settings, policies and grants. */
export async function feedSnapshot(
  ports: Ports,
  signer: FeedSigner,
  tenantId: string,
  cursor: string | undefined,
  limit: number,
  scope?: FeedScope,
): Promise<FeedResponse> {
  // The epoch beside the head (it does not depend on the version): one round trip.
  let head: HeadRead | undefined;
  let state: SnapshotCursor;
  let epoch: number;
  if (cursor) {
    state = decode(cursor, tenantId, scope);
    // A cursor's version is one this tenant's head reached (read only when this instance has not seen it): a forged one
    // past it had the page signed as a version the tenant never had.
    const reached = async () => state.version <= seenVersion(ports, tenantId) || state.version <= (await headVersion(ports, tenantId));
    const [known, read] = await Promise.all([reached(), sharedEpoch(ports, tenantId)]);
    if (!known)
      throw new SimrootError("request.invalid_cursor", "input", "The cursor is not one this feed returned", {
        issues: [{ path: "cursor", message: "a version past the feed's head" }],
      });
    epoch = read;
  } else {
    [head, epoch] = await Promise.all([readHead(ports, tenantId), sharedEpoch(ports, tenantId)]);
    state = { version: head.version, page: 0, phase: "revoked", began: ports.now().getTime() };
  }
  const entries: FeedEntry[] = [];
  const entry = (kind: FeedEntry["kind"], key: string, value: Record<string, unknown>): FeedEntry => ({
    version: state.version,
    kind,
    key,
    value,
  });
  let phase = state.phase;
  let start = state.start;
  let stripe = state.stripe ?? 0;
  let replayed = state.replayed;
  // And one inside the replay's window, where a snapshot of this version could have begun its replay (its time at the
  // earliest: `began` then counts from the version's own time, less the allowance): a position from further back replayed every change
  // since, to a key narrowed to one site as removals of the other sites' devices and addresses (review 92).
  if (replayed !== undefined && replayed < (await replayFloor(ports, tenantId, state.version))) throw invalidReplayPosition();
  const listing = phase === "replay" ? undefined : snapshotListing(ports, tenantId, { phase, stripe, start }, !cursor);
  /** Where the replay starts (it depends on the version alone): read beside the last listing's first round trip. */
  let replayFrom: Promise<number> | undefined;
  if (!cursor) {
    // Read beside the listings' first round trip (after the version, as the listings are).
    const [[tenant, enforcement, rules, grants]] = await Promise.all([
      Promise.all([
        tenantSettings(ports, tenantId),
        readEnforcement(ports, tenantId),
        allPolicyItems(ports, tenantId, "policy", (item) => policyRuleOf(storedPolicy(item))),
        allPolicyItems(ports, tenantId, "grant", (item) => grantOf(storedGrant(item))),
      ]),
      listing?.read(limit),
    ]);
    // One fail mode: the enforcement settings' (the tenant settings carry none in the feed).
    const { failMode: _failMode, ...tenantEntry } = tenant;
    entries.push(entry("settings", "tenant", tenantEntry), entry("settings", "enforcement", enforcementSettingsOf(enforcement)));
    for (const rule of rules) entries.push(entry("policy", rule.id, rule));
    // A grant revoked or ended grants nothing: left out, or every one a tenant ever made would ride on this page, whatever
    // its `limit` (review 113: 14,000 of them passed the 6 MB a Lambda may answer, and no PEP could take a snapshot).
    // Ended by this clock: a PEP whose clock is behind loses it a little early, never keeps it late.
    const now = ports.now().getTime();
    for (const grant of grants)
      if (grant.revokedAt === undefined && Date.parse(grant.notAfter) > now) entries.push(entry("grant", grant.id, grant));
  }
  /** Where the page stands once it used what the listings gave: the replay once they were used whole. */
  const advance = () => ({ phase, stripe, start } = listing?.position() ?? { phase: "replay", stripe: 0, start: undefined });
  advance();
  let complete = false;
  let scanned = 0;
  while (!complete && entries.length < limit && scanned < limit * scanPerEntry) {
    if (phase === "replay") {
      replayed ??= await (replayFrom ?? replayStart(ports, tenantId, state.version, state.began));
      const page = await replayPage(ports, tenantId, replayed, state.version, Math.ceil((limit - entries.length) / 4), head);
      const replay = page.entries.map(
        (change) => ({ version: state.version, kind: change.kind, key: change.key, value: change.value }) as FeedEntry,
      );
      entries.push(...withoutRepeats(entries, scope ? await scopeDeltas(ports, tenantId, scope, replay, "replay") : replay));
      scanned += replay.length;
      replayed = page.last;
      complete = page.done || replayed >= state.version;
      continue;
    }
    if (replayed === undefined && phase === "bindings" && stripe === firstTableStripe && start === undefined) {
      // The page reaches where bindings are kept now, the listing read last: most likely the replay next (a page that the
      // bindings fill reads it again when its replay begins).
      replayFrom ??= replayStart(ports, tenantId, state.version, state.began);
      replayFrom.catch(() => {});
    }
    await listing!.read(limit - entries.length);
    const taken = listing!.take(limit - entries.length);
    scanned += taken.length;
    const bindings: FeedEntry[] = [];
    for (const { phase: from, item } of taken) {
      if (from === "revoked") {
        const view = revokedMarkerView(item);
        if (!scope || inScope(scope, view.labels)) entries.push(entry("device", view.id, view));
      } else if (from === "devices") {
        if (scope && !inScope(scope, item.labels)) continue;
        const view = enforcementView(enforcementViewSchema.parse(item));
        entries.push(entry("device", view.id, view));
      } else {
        bindings.push(entry("binding", String(item.address), bindingValue(item)));
      }
    }
    // The bindings come last: after every device entry of the page.
    entries.push(...(scope ? await scopeSnapshotBindings(ports, tenantId, scope, bindings) : bindings));
    advance();
  }
  const last = complete;
  const scoped = scope ? { scope: scope.text } : {};
  const next = last
    ? undefined
    : encode({
        version: state.version,
        page: state.page + 1,
        phase,
        start,
        ...(stripe === 0 ? {} : { stripe }),
        ...(replayed === undefined ? {} : { replayed }),
        // Until the replay has started from it (a cursor of before 2026-12-03 has none: counted from now).
        ...(replayed === undefined && typeof state.began === "number" ? { began: state.began } : {}),
        ...scoped,
      });
  // The head commits to the cursor it answers and the one it hands out: a PEP follows only the chain of pages that began at page 0.
  const chain = { ...(cursor ? { cursor: cursorHash(cursor) } : {}), ...(next ? { next: cursorHash(next) } : {}) };
  const fields = {
    tenantId,
    epoch,
    kind: "snapshot" as const,
    since: 0,
    version: state.version,
    page: state.page,
    last,
    ...chain,
    ...scoped,
  };
  const signed = await signHead(signer, fields, entries, ports.now());
  return { signed, entries, ...(next ? { next } : {}) };
}
