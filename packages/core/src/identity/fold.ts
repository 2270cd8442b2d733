/**
 * The identity fold: a device's state is a pure function of the set of facts known about
 * it, folded in a fixed order (time order; eUICC profile facts in seqNumber order). Arrival
 * order therefore never matters: any interleaving, duplication or reordering of the same
 * facts folds to the same state as in-order delivery. The history keeps a bounded window of
 * recent facts; older ones are folded into a checkpoint, and a fact older than the
 * checkpoint is stale (it changes nothing), unless it takes access away (a revocation, a
 * hold: `admission`'s `late`), which is folded into the checkpoint. There, and where a hold is
 * reported after simroot's reinstatement though dated before it (`withSpares`), arrival order
 * can matter, and then only on the side of less access.
 */
import { createHash } from "node:crypto";
import type { Bearer } from "../catalogue/catalogue.ts";
import { countryOfMcc } from "../catalogue/mcc.ts";
import { canonicalJson } from "../ledger/chain.ts";
import { bySequence, byTime, isProfileFact, type Fact } from "./fact.ts";
import { unpaddedProfiles, type FoldSettings, type Hold, type IdentityState, type Session } from "./identity-state.ts";

export const timeWindow = 32;
export const profileWindow = 16;

export interface History {
  readonly checkpoint: IdentityState;
  /** The last time fact folded into the checkpoint (`at` and `key`). */
  readonly timeCutoff?: { readonly at: string; readonly key: string };
  /** The highest seqNumber folded into the checkpoint. */
  readonly seqCutoff?: number;
  /** The last unsequenced profile fact (an SM-DP+ report) folded into the checkpoint. */
  readonly profileTimeCutoff?: { readonly at: string; readonly key: string };
  readonly facts: readonly Fact[];
  /**
   * The last facts that take access away folded into the checkpoint, straight (`admission`'s `late`) or out of the
   * window, which keeps them no longer, each as `<digest of its content>:<key>`: a redelivery of one is a duplicate.
   * Folded again as late, a hold lifted since, its lift gone into the checkpoint too, would be imposed again (review 96:
   * also one that had left the window in order). Another fact under one of their keys is a fact of its own, as in the
   * window (`keyedByContent`; review 99: a revocation under the key of a suspension that had left was dropped).
   */
  readonly lateFacts?: readonly string[];
  /**
   * The last facts whose `at` is a receipt's (`timeChosen`, `stated`) that left the window, as `lateFacts` keeps its
   * own (and read with them: a key one of them held is renamed as in the window, review 137): delivered again, one is received later, after the window, and would be new (review 131: a clamped
   * record sent again after 32 later ones reopened its session). Kept apart from `lateFacts`, whose entries they would
   * otherwise push out (review 134: a lifted suspension, redelivered after 32 such facts left, suspended the device
   * again). A source whose every record is clamped is covered for the 32 of them after the window.
   */
  readonly receivedFacts?: readonly string[];
}

/** `late`: a fact that takes access away, dated before the checkpoint: folded into it (`remember`), never stale. */
export type Admission = "new" | "late" | "duplicate" | "stale";

/**
 * Facts that only take access away: a revocation (terminal, whenever it is dated) and a hold (it stands until a later
 * fact of its side lifts it). Dated before the checkpoint, they were stale and dropped, unrecorded (review 95: an
 * operator's revocation delayed behind 32 later facts, or behind 32 a source stamped ahead within its allowed skew,
 * was accepted and lost). Folded into the checkpoint instead: the facts the checkpoint holds that came after it are
 * not folded again, so a hold lifted among them stands (the safe side), until its side lifts it again.
 */
const takesAccessAway = (fact: Fact) =>
  fact.type === "device.revoked" || fact.type === "device.suspended" || fact.type === "device.quarantined";

/** The equipment a fact reports: an attach naming an IMEI, an equipment change (with or without one). */
const reportsEquipment = (fact: Fact) => fact.type === "device.equipment-changed" || (fact.type === "sim.attached" && !!fact.data.imei);

/** Whether the IMEI lock applies to `fact`: as it stood when the fact was admitted (`lock`), else as it stands. */
const lockedFor = (fact: Fact, settings: FoldSettings) => fact.lock ?? settings.imeiLock;

/**
 * A report of other equipment under the IMEI lock takes access away too: it quarantines the device (review 123: one
 * dated before the window, delayed behind 32 later facts or stamped before them within a source's allowed skew, was
 * dropped as stale, and the SIM moved into other equipment kept its access). Judged against the equipment the
 * checkpoint knows, and only when dated after the report it learned that equipment from.
 */
function movesEquipment(history: History, fact: Fact, settings: FoldSettings): boolean {
  if (!reportsEquipment(fact) || !settings.imeiLock) return false;
  // A report from before the one the checkpoint's equipment was learned from is history, not a move: a redelivery of
  // an attach that left the window in order (review 126: it quarantined the device again, and set its IMEI back).
  const since = history.checkpoint.imeiSince;
  if (since !== undefined && fact.at <= since) return false;
  const imei = fact.type === "sim.attached" || fact.type === "device.equipment-changed" ? fact.data.imei : undefined;
  if (imei === undefined) return true;
  const known = history.checkpoint.imei;
  return known !== undefined && known.slice(0, 14) !== imei.slice(0, 14);
}

/**
 * What a late fact folds into the checkpoint: all of a fact that only takes access away; of an attach in other
 * equipment, the equipment alone (its session, dated before facts the checkpoint holds, could open what they closed).
 */
function lateEffect(fact: Fact): Fact {
  if (fact.type !== "sim.attached") return fact;
  const { type: _type, data, ...rest } = fact;
  return { ...rest, type: "device.equipment-changed", data: { imei: data.imei! } } as Fact;
}
/**
 * The fact as the device's window should know it: with its own key, or, when the window knows that key for a fact that
 * says something else, with a key made distinct by its content (review 95: a fact posted first under the key a
 * source's next report would carry, Data Streamer's sequential record ids, made that report a duplicate, and a
 * revocation was dropped). A true redelivery says the same, and is a duplicate as before. The same for the facts that
 * left the window and are still known (`lateFacts`).
 */
export function keyedByContent(history: History, fact: Fact): Fact {
  const renamed = { ...fact, key: `${fact.key}#${digestOf(fact)}` };
  const left = leftFacts(history);
  // A redelivery of a fact that was renamed, which left the window: its renamed key is the one kept.
  if (left.includes(lateEntry(renamed))) return renamed;
  const known = history.facts.find((each) => each.key === fact.key);
  const same = known
    ? contentOf(known) === contentOf(fact)
    : !left.some((entry) => keyOfLate(entry) === fact.key) || left.includes(lateEntry(fact));
  return same ? fact : renamed;
}
/** The facts that left the window and are still known, each as `<digest of its content>:<key>`. */
const leftFacts = (history: History) => [...(history.lateFacts ?? []), ...(history.receivedFacts ?? [])];
/**
 * What a fact says: its time as the sender stated it (`stated`, when it was clamped), none when the sender stated none
 * (`timeChosen`): every delivery of the fact says the same, whenever it is received.
 */
const contentOf = (fact: Fact) =>
  canonicalJson({ type: fact.type, ...(fact.timeChosen ? {} : { at: fact.stated ?? fact.at }), seq: fact.seq ?? null, data: fact.data });
const digestOf = (fact: Fact) => createHash("sha256").update(contentOf(fact)).digest("base64url").slice(0, 16);
/** A fact as `lateFacts` keeps it: the digest of its content (16 characters), then its key. */
const lateEntry = (fact: Fact) => `${digestOf(fact)}:${fact.key}`;
const keyOfLate = (entry: string) => entry.slice(17);
const withLate = (history: Pick<History, "lateFacts">, fact: Fact) => [...(history.lateFacts ?? []), lateEntry(fact)].slice(-timeWindow);
const datedAtReceipt = (fact: Fact) => !isProfileFact(fact) && (fact.timeChosen === true || fact.stated !== undefined);

export function admission(history: History, fact: Fact, settings: FoldSettings): Admission {
  if (history.facts.some((known) => known.key === fact.key) || leftFacts(history).includes(lateEntry(fact))) return "duplicate";
  if (isProfileFact(fact)) {
    if (fact.seq !== undefined) return history.seqCutoff !== undefined && fact.seq <= history.seqCutoff ? "stale" : "new";
    // Unsequenced facts fold before every sequenced one: once a sequenced fact is in the
    // checkpoint, an unsequenced one's place is behind it (so is a redelivery of one that left).
    return history.seqCutoff !== undefined || before(fact, history.profileTimeCutoff) ? "stale" : "new";
  }
  if (!before(fact, history.timeCutoff)) return "new";
  return takesAccessAway(fact) || movesEquipment(history, fact, settings) ? "late" : "stale";
}

const before = (fact: Fact, cutoff: { readonly at: string; readonly key: string } | undefined) =>
  cutoff !== undefined && byTime(fact, { ...fact, at: cutoff.at, key: cutoff.key }) <= 0;

/** Adds a new fact and moves what falls out of the window into the checkpoint; a late one goes into it at once. */
export function remember(history: History, reported: Fact, settings: FoldSettings): History {
  const fact = reportsEquipment(reported) ? ({ ...reported, lock: settings.imeiLock } as Fact) : reported;
  if (!isProfileFact(fact) && before(fact, history.timeCutoff))
    return {
      ...history,
      checkpoint: foldFacts(history.checkpoint, [withSpares(history, lateEffect(fact))], settings),
      lateFacts: withLate(history, reported),
    };
  const admitted = isProfileFact(fact) ? fact : withSpares(history, fact);
  const timeFacts = [...history.facts.filter((known) => !isProfileFact(known)), ...(isProfileFact(fact) ? [] : [admitted])].sort(byTime);
  const profileFacts = [...history.facts.filter(isProfileFact), ...(isProfileFact(fact) ? [fact] : [])].sort(bySequence);
  let checkpoint = history.checkpoint;
  let { timeCutoff, seqCutoff, profileTimeCutoff, lateFacts, receivedFacts } = history;
  while (timeFacts.length > timeWindow) {
    const oldest = timeFacts.shift()!;
    checkpoint = foldFacts(checkpoint, [oldest], settings);
    timeCutoff = { at: oldest.at, key: oldest.key };
    if (takesAccessAway(oldest)) lateFacts = withLate({ lateFacts }, oldest);
    else if (datedAtReceipt(oldest)) receivedFacts = [...(receivedFacts ?? []), lateEntry(oldest)].slice(-timeWindow);
  }
  while (profileFacts.length > profileWindow) {
    const oldest = profileFacts.shift()!;
    checkpoint = foldFacts(checkpoint, [oldest], settings);
    if (oldest.seq !== undefined) seqCutoff = Math.max(seqCutoff ?? 0, oldest.seq);
    else profileTimeCutoff = { at: oldest.at, key: oldest.key };
  }
  return {
    checkpoint: withLiveSpares(checkpoint, timeFacts),
    timeCutoff,
    seqCutoff,
    ...(profileTimeCutoff === undefined ? {} : { profileTimeCutoff }),
    facts: [...timeFacts, ...profileFacts],
    ...(lateFacts ? { lateFacts } : {}),
    ...(receivedFacts ? { receivedFacts } : {}),
  };
}

/**
 * The fact, with the keys of simroot's reinstatements (an admin's, a rule's) that the window holds dated after it: they
 * were admitted first, so they did not know of it, and they lift no hold it imposes (`spares`). Such a reinstatement is
 * dated after every fact known when it was taken (`actionTime`): a report arriving after it, dated before it (an attach
 * in other equipment under the IMEI lock, a source's suspension), folded before it, and was lifted by it unseen
 * (review 95). Arrival order decides here, as it does for a late denial (`admission`), and only on the side of less
 * access.
 */
function withSpares(history: History, fact: Fact): Fact {
  const spares = history.facts
    .filter((known) => known.type === "device.reinstated" && sideOf(known) === "simroot" && byTime(fact, known) < 0)
    .map((known) => known.key);
  return spares.length === 0 ? fact : { ...fact, spares: [...new Set([...(fact.spares ?? []), ...spares])] };
}

/**
 * The checkpoint with its holds spared only by reinstatements the window still holds: one folded into the checkpoint
 * is never folded again, and its key was dead weight on every hold after it (review 99: 59 keys after 60 turns).
 */
function withLiveSpares(checkpoint: IdentityState, facts: readonly Fact[]): IdentityState {
  const holds = checkpoint.holds;
  const sources = holds?.sources;
  const all = [holds?.simroot, holds?.operator, ...Object.values(sources ?? {})];
  if (!holds || !all.some((hold) => hold?.spares || hold?.behind)) return checkpoint;
  const live = new Set(facts.filter((fact) => fact.type === "device.reinstated" && sideOf(fact) === "simroot").map((fact) => fact.key));
  const pruned = (hold: Hold): Hold => {
    const { spares, behind, ...rest } = hold;
    const kept = spares?.filter((key) => live.has(key)) ?? [];
    const deeper = behind && pruned(behind);
    return { ...rest, ...(kept.length > 0 ? { spares: kept } : {}), ...(deeper?.spares ? { behind: deeper } : {}) };
  };
  return {
    ...checkpoint,
    holds: {
      ...(holds.simroot ? { simroot: pruned(holds.simroot) } : {}),
      ...(holds.operator ? { operator: pruned(holds.operator) } : {}),
      ...(sources ? { sources: Object.fromEntries(Object.entries(sources).map(([source, hold]) => [source, pruned(hold)])) } : {}),
    },
  };
}

/** The state the history stands for. */
export const currentState = (history: History, settings: FoldSettings): IdentityState =>
  foldFacts(history.checkpoint, history.facts, settings);

export function foldFacts(base: IdentityState, facts: readonly Fact[], settings: FoldSettings): IdentityState {
  const state: IdentityState = structuredClone(base);
  state.profiles = unpaddedProfiles(state.profiles);
  // A hold folded before holds were kept apart: taken as simroot's, which only simroot lifts (the safe side).
  if ((state.state === "suspended" || state.state === "quarantined") && !state.holds)
    state.holds = {
      simroot: { state: state.state, ...(state.stateReason === undefined ? {} : { reason: state.stateReason }), at: state.stateAt },
    };
  for (const fact of facts.filter((fact) => !isProfileFact(fact)).sort(byTime)) applyTimeFact(state, fact, settings);
  for (const fact of facts.filter(isProfileFact).sort(bySequence)) applyProfileFact(state, fact);
  return state;
}

function setLifecycle(state: IdentityState, next: IdentityState["state"], reason: string | undefined, at: string) {
  if (state.state === "revoked") return; // terminal, whatever arrives later
  state.state = next;
  state.stateReason = reason;
  state.stateAt = at;
}

/**
 * Who a fact speaks for: an action taken through simroot (an admin, an automation rule), or the report of the source
 * that sent it (its key is `<source id>|<dedupe key>`; `api|` for simroot's own).
 */
const sideOf = (fact: Fact): Side =>
  fact.key.startsWith("api|") ? "simroot" : { source: fact.key.slice(0, Math.max(0, fact.key.indexOf("|"))) };
type Side = "simroot" | "operator" | { readonly source: string };

const strictness = { suspended: 2, quarantined: 1 } as const;

/**
 * Sets (or, with `hold` undefined, lifts) one side's hold, and the state the holds give: the stricter hold (a
 * suspension over a quarantine; of two alike, the later), or active when none is left (a lift that leaves the other
 * side's hold changes nothing visible but the reason). Revoked is terminal.
 */
function setHold(state: IdentityState, side: Side, hold: Hold | undefined, reason: string | undefined, at: string) {
  if (state.state === "revoked") return;
  const holds = { ...state.holds, ...(state.holds?.sources ? { sources: { ...state.holds.sources } } : {}) };
  if (typeof side === "string") {
    if (hold) holds[side] = hold;
    else delete holds[side];
  } else if (hold) holds.sources = { ...holds.sources, [side.source]: hold };
  else if (holds.sources) {
    delete holds.sources[side.source];
    if (Object.keys(holds.sources).length === 0) delete holds.sources;
  }
  const held = [holds.simroot, holds.operator, ...Object.values(holds.sources ?? {})].filter((each): each is Hold => each !== undefined);
  if (held.length === 0) {
    delete state.holds;
    if (state.state !== "active") setLifecycle(state, "active", reason, at);
    return;
  }
  state.holds = holds;
  const [strictest] = held.sort((a, b) => strictness[b.state] - strictness[a.state] || (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  setLifecycle(state, strictest!.state, strictest!.reason, strictest!.at);
}

/** A hold a fact imposes, spared by the reinstatements it was admitted after (`withSpares`). */
const hold = (state: Hold["state"], reason: string | undefined, fact: Fact): Hold => ({
  state,
  ...(reason === undefined ? {} : { reason }),
  at: fact.at,
  ...(fact.spares === undefined ? {} : { spares: [...fact.spares] }),
});

const holdOf = (state: IdentityState, side: Side) => (typeof side === "string" ? state.holds?.[side] : state.holds?.sources?.[side.source]);

/**
 * Imposes `side`'s hold. On simroot's side, where an admin, a rule and the IMEI lock take turns, one taking the place of
 * a hold that some reinstatement spares keeps it (`behind`, with what the hold it kept behind was spared by too: review
 * 96): a reinstatement that did not know of that one would lift it with the new one. A source's hold replaces its
 * earlier one whole: the source's later word is what a reinstatement that knew it lifts.
 */
function impose(state: IdentityState, side: Side, hold: Hold) {
  const replaced = side === "simroot" ? holdOf(state, side) : undefined;
  const { behind: deeper, ...kept } = replaced ?? {};
  const spares = [...new Set([...(replaced?.spares ?? []), ...(deeper?.spares ?? [])])];
  const behind = replaced?.spares ? ({ ...kept, spares } as Hold) : deeper;
  setHold(state, side, behind ? { ...hold, behind } : hold, undefined, hold.at);
}

/**
 * Lifts, on simroot's reinstatement `fact`, `side`'s hold, unless a fact it did not know of imposed it; when that is
 * the hold this one replaced, that hold stands.
 */
function reinstate(state: IdentityState, side: Side, fact: Fact & { type: "device.reinstated" }) {
  const held = holdOf(state, side);
  if (held?.spares?.includes(fact.key)) return;
  const behind = held?.behind?.spares?.includes(fact.key) ? held.behind : undefined;
  setHold(state, side, behind, fact.data.reason, fact.at);
}

function observeImei(state: IdentityState, imei: string | undefined, fact: Fact, settings: FoldSettings) {
  if (!imei) return;
  const normalized = imei.slice(0, 14);
  const known = state.imei?.slice(0, 14);
  if (known !== undefined && known !== normalized && lockedFor(fact, settings)) {
    impose(state, "simroot", { ...hold("quarantined", `IMEI changed from ${state.imei} to ${imei}`, fact), imei });
  }
  if (known === normalized) vouchForEquipment(state, normalized, fact);
  if (known !== normalized) {
    state.imei = imei;
    state.imeiSince = fact.at;
  }
}

/**
 * A fact reporting the equipment an IMEI-lock hold was imposed for, known to the reinstatements that hold spares (it
 * does not spare them itself): they knew of that equipment, and lift the hold (review 96: an admin who reinstated the
 * device in its new equipment had it quarantined again by a delayed report of the same change).
 */
function vouchForEquipment(state: IdentityState, imei: string, fact: Fact) {
  const held = state.holds?.simroot;
  if (!held) return;
  const vouched = (each: Hold): Hold => {
    if (!each.spares || each.imei?.slice(0, 14) !== imei) return each;
    const { spares: _spares, ...rest } = each;
    const spares = each.spares.filter((key) => fact.spares?.includes(key));
    return spares.length === 0 ? rest : { ...rest, spares };
  };
  const behind = held.behind && vouched(held.behind);
  state.holds = { ...state.holds, simroot: { ...vouched(held), ...(behind ? { behind } : {}) } };
}

/**
 * The network saw the SIM in other equipment but did not say which: a locked device is
 * quarantined, and the IMEI is forgotten so that the next report naming one teaches it
 * (without quarantining again a device an admin reinstated in between).
 */
function associationChanged(state: IdentityState, association: "IMEI" | "IMEISV", fact: Fact, settings: FoldSettings) {
  if (lockedFor(fact, settings))
    impose(state, "simroot", hold("quarantined", `IMSI-${association} association changed (new IMEI not reported)`, fact));
  delete state.imei;
  state.imeiSince = fact.at;
}

function openSession(state: IdentityState, data: Omit<Session, "since" | "country">, at: string) {
  const country = data.plmn ? countryOfMcc(data.plmn.mcc) : undefined;
  state.sessions[data.bearer] = { ...data, ...(country ? { country } : {}), since: at };
}

function applyTimeFact(state: IdentityState, fact: Fact, settings: FoldSettings) {
  // A revoked SIM opens no session again: a late attach never revives it.
  if (state.state === "revoked" && (fact.type === "sim.attached" || fact.type === "bearer.switched")) return;
  switch (fact.type) {
    case "sim.attached": {
      const { imei, ...session } = fact.data;
      openSession(state, session, fact.at);
      observeImei(state, imei, fact, settings);
      return;
    }
    case "sim.detached":
      if (fact.data.bearer) delete state.sessions[fact.data.bearer];
      else state.sessions = {};
      return;
    case "bearer.switched": {
      const { from, ...session } = fact.data;
      if (from) delete state.sessions[from];
      else for (const bearer of Object.keys(state.sessions) as Bearer[]) if (bearer !== session.bearer) delete state.sessions[bearer];
      openSession(state, session, fact.at);
      return;
    }
    case "device.roaming-changed": {
      const country = fact.data.country ?? (fact.data.mcc ? countryOfMcc(fact.data.mcc) : undefined);
      state.roaming = { roaming: fact.data.roaming, mcc: fact.data.mcc, country, since: fact.at };
      return;
    }
    case "device.equipment-changed":
      if (fact.data.imei === undefined) associationChanged(state, fact.data.association ?? "IMEI", fact, settings);
      else observeImei(state, fact.data.imei, fact, settings);
      return;
    case "device.reachability-changed":
      state.reachable = { reachable: fact.data.reachable, via: fact.data.via, since: fact.at };
      return;
    case "device.revoked":
      setLifecycle(state, "revoked", fact.data.reason, fact.at);
      state.sessions = {};
      return;
    case "device.suspended":
    case "device.quarantined":
      impose(state, sideOf(fact), hold(fact.type === "device.suspended" ? "suspended" : "quarantined", fact.data.reason, fact));
      return;
    case "device.reinstated":
      // A source's report of the SIM active again (a Data Streamer "SIM activation") lifts that source's hold only
      // (and one kept before holds were kept per source, as any source's did then), never another source's (review 95)
      // nor a quarantine an admin, a rule or the IMEI lock imposed. simroot's reinstatement (an admin's, a rule's)
      // lifts them all: some holds are never lifted by a report (a CAMARA SIM swap waits for someone to confirm).
      // Not one imposed by a fact it did not know of (`withSpares`).
      if (sideOf(fact) === "simroot") {
        const sides: Side[] = ["simroot", "operator", ...Object.keys(state.holds?.sources ?? {}).map((source) => ({ source }))];
        for (const side of sides) reinstate(state, side, fact);
        return;
      }
      setHold(state, "operator", undefined, fact.data.reason, fact.at);
      setHold(state, sideOf(fact), undefined, fact.data.reason, fact.at);
      return;
    default:
      return;
  }
}

/** SGP.32 profile state machine: at most one enabled profile per eUICC. */
function applyProfileFact(state: IdentityState, fact: Fact) {
  if (!isProfileFact(fact)) return;
  const reported = fact.data as { eid: string; iccid: string; seqNumber?: number; result?: "success" | "failure"; reason?: string };
  // One profile whatever the spelling: an eUICC may report an ICCID with the F that pads it to 20 digits, or without.
  const data = { ...reported, iccid: reported.iccid.replace(/F$/i, "") };
  const existing = state.profiles[data.iccid];
  const base = { iccid: data.iccid, eid: data.eid, seqNumber: fact.seq ?? data.seqNumber, at: fact.at };
  switch (fact.type) {
    case "profile.installed":
      if (data.result === "failure") {
        if (!existing || existing.state === "deleted" || existing.state === "failed") {
          state.profiles[data.iccid] = { ...base, state: "failed", reason: data.reason };
        }
        return;
      }
      if (!existing || existing.state === "deleted" || existing.state === "failed")
        state.profiles[data.iccid] = { ...base, state: "installed" };
      return;
    case "profile.enabled":
      for (const other of Object.values(state.profiles)) {
        if (other.eid === data.eid && other.iccid !== data.iccid && other.state === "enabled") other.state = "disabled";
      }
      state.profiles[data.iccid] = { ...base, state: "enabled" };
      return;
    case "profile.disabled":
      state.profiles[data.iccid] = { ...base, state: "disabled" };
      return;
    case "profile.deleted":
      state.profiles[data.iccid] = { ...base, state: "deleted" };
      return;
    default:
      return;
  }
}
