/**
 * Verification of what the control plane sends, against the pinned Ed25519 key(s) and what
 * this PEP already holds. Pure: no I/O, the clock is a parameter. TUF's checks, applied to
 * the feed: a valid signature by a pinned key, the PEP's own tenant, content that matches
 * the signed hash, an unexpired head of bounded lifetime (freeze attacks), no rollback
 * below the version held, no gap after it. A snapshot applies only once every page of
 * one version arrived, in order (`SnapshotAssembly`).
 */
import { verify, type KeyObject } from "node:crypto";
import { SimrootError, type ErrorKind } from "@simroot/core/error";
import {
  contentHash,
  cursorHash,
  feedResponseSchema,
  headBytes,
  maxClockSkewSeconds,
  maxHeadLifetimeSeconds,
  signedHeadSchema,
  type FeedEntry,
  type FeedHead,
  type FeedResponse,
  type SignedHead,
} from "@simroot/core/feed/wire";

export const feedFailures = {
  "feed.malformed": "input",
  "feed.bad_signature": "auth",
  "feed.wrong_tenant": "forbidden",
  "feed.wrong_scope": "forbidden",
  "feed.content_mismatch": "input",
  "feed.expired": "conflict",
  "feed.not_yet_valid": "conflict",
  "feed.rollback": "conflict",
  "feed.epoch": "conflict",
  "feed.wrong_kind": "conflict",
  "feed.gap": "conflict",
  "feed.too_large": "input",
} as const satisfies Record<string, ErrorKind>;
export type FeedFailure = keyof typeof feedFailures;

/** A response (or head) this PEP refuses; `code` says which check failed. */
export class FeedVerificationError extends SimrootError {
  override readonly code: FeedFailure;
  constructor(code: FeedFailure, message: string, detail: Record<string, unknown> = {}) {
    super(code, feedFailures[code], message, { detail });
    this.name = "FeedVerificationError";
    this.code = code;
  }
}

export const isFeedVerificationError = (error: unknown): error is FeedVerificationError => error instanceof FeedVerificationError;

const fail = (code: FeedFailure, message: string, detail?: Record<string, unknown>): never => {
  throw new FeedVerificationError(code, message, detail);
};

/** What the PEP holds when a response arrives. */
export interface VerifyContext {
  /** The pinned feed keys (several during a key rotation); fetching them from the feed is for setup only. */
  readonly publicKeys: readonly KeyObject[];
  /** The tenant this PEP enforces for. */
  readonly tenantId: string;
  /** The canonical selector this PEP's feed is narrowed to; undefined for the whole tenant. */
  readonly scope?: string;
  /** The version the PEP's view is at (0 before its first snapshot). */
  readonly version: number;
  /** The feed epoch of the view (0 before its first snapshot): see core's feed/epoch.ts. */
  readonly epoch: number;
  /** Epoch milliseconds. */
  readonly now: number;
  /** How far this PEP's clock may be off the control plane's, ms (at most `maxClockSkewSeconds`; default 0). */
  readonly skewMs?: number;
}

/** The clock-skew tolerance of a context, bounded. */
const skewOf = (ctx: VerifyContext) => Math.min(Math.max(ctx.skewMs ?? 0, 0), maxClockSkewSeconds * 1000);

/** True when one of the pinned keys signed `signed.head`. */
export function signatureValid(signed: SignedHead, publicKeys: readonly KeyObject[]): boolean {
  let signature: Buffer;
  try {
    signature = Buffer.from(signed.signature, "base64");
  } catch {
    return false;
  }
  const bytes = headBytes(signed.head);
  return publicKeys.some((key) => {
    try {
      return verify(null, bytes, key, signature);
    } catch {
      return false;
    }
  });
}

/** Signature, tenant, freshness and rollback: what every head must pass, whatever it carries. */
export function verifyHead(input: unknown, ctx: VerifyContext): SignedHead {
  const parsed = signedHeadSchema.safeParse(input);
  if (!parsed.success) return fail("feed.malformed", `The signed head is malformed: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return checkHead(parsed.data, ctx);
}

/** A pinned key's signature, for the PEP's tenant: the head's own checks, wherever it comes from. */
function checkSigner(signed: SignedHead, ctx: Pick<VerifyContext, "publicKeys" | "tenantId">): FeedHead {
  if (!signatureValid(signed, ctx.publicKeys))
    return fail("feed.bad_signature", `The head's signature is not by a pinned key (keyId ${signed.keyId})`, { keyId: signed.keyId });
  const head = signed.head;
  if (head.tenantId !== ctx.tenantId)
    return fail("feed.wrong_tenant", `The head is for tenant ${head.tenantId}, this PEP enforces ${ctx.tenantId}`, {
      tenantId: head.tenantId,
    });
  return head;
}

/** `verifyHead` for a head already parsed. */
function checkHead(signed: SignedHead, ctx: VerifyContext): SignedHead {
  const head = checkSigner(signed, ctx);
  // A genuine response for another site's selector would add its devices and remove this one's.
  if ((head.scope ?? "") !== (ctx.scope ?? "")) {
    return fail("feed.wrong_scope", `The head is narrowed to "${head.scope ?? ""}", this PEP follows "${ctx.scope ?? ""}"`, {
      scope: head.scope ?? null,
    });
  }
  // Rollback: an older epoch never; a lower version only from a snapshot of a newer epoch (an admin's signed statement).
  if (head.epoch < ctx.epoch) {
    return fail("feed.rollback", `The head is of feed epoch ${head.epoch}, below the epoch held (${ctx.epoch})`, {
      epoch: head.epoch,
      held: ctx.epoch,
    });
  }
  if (head.epoch === ctx.epoch && head.version < ctx.version) {
    return fail("feed.rollback", `The head brings version ${head.version}, below the version held (${ctx.version})`, {
      version: head.version,
      held: ctx.version,
    });
  }
  if (head.epoch > ctx.epoch && head.kind !== "snapshot") {
    return fail("feed.epoch", `The feed moved to epoch ${head.epoch} (this PEP holds ${ctx.epoch}): take a snapshot`, {
      epoch: head.epoch,
      held: ctx.epoch,
    });
  }
  const issuedAt = Date.parse(head.issuedAt);
  const expiresAt = Date.parse(head.expiresAt);
  if (Number.isNaN(issuedAt) || Number.isNaN(expiresAt)) return fail("feed.malformed", "The head's issuedAt or expiresAt is not a date");
  if (expiresAt - issuedAt > maxHeadLifetimeSeconds * 1000 || expiresAt < issuedAt) {
    return fail("feed.expired", `The head claims a lifetime beyond ${maxHeadLifetimeSeconds} s`, {
      issuedAt: head.issuedAt,
      expiresAt: head.expiresAt,
    });
  }
  const skew = skewOf(ctx);
  if (expiresAt + skew <= ctx.now) return fail("feed.expired", `The head expired at ${head.expiresAt}`, { expiresAt: head.expiresAt });
  // A head issued "later" than this clock allows would stay fresh longer than its lifetime: refuse it.
  if (issuedAt - skew > ctx.now) {
    return fail(
      "feed.not_yet_valid",
      `The head was issued at ${head.issuedAt}, ahead of this PEP's clock beyond the ${skew} ms tolerance`,
      { issuedAt: head.issuedAt },
    );
  }
  if (head.kind === "delta" && head.version < head.since) return fail("feed.malformed", "A delta head's version is below its since");
  return signed;
}

/** What a state file says the view it holds is: the last head accepted, and the version, epoch and selector of the view. */
export interface StoredView {
  readonly head: unknown;
  readonly version: number;
  readonly epoch: number;
  readonly scope: string | undefined;
}

/**
 * Checks the head a state file holds as the feed's heads are checked (shape, a pinned key's signature, the PEP's tenant),
 * and that it is the head of the view the file holds: its version, epoch and selector (review 88: a file was trusted
 * whole, so an edited version skipped the deltas in between, a revocation among them). Not its freshness: the engine
 * counts that, and fails closed on an expired head. A file with no head is one saved before the first snapshot
 * completed (its early revocations only): version 0, epoch 0. Returns the head verified (undefined for such a file).
 */
export function verifyStoredView(view: StoredView, ctx: Pick<VerifyContext, "publicKeys" | "tenantId">): SignedHead | undefined {
  if (view.head === undefined) {
    if (view.version === 0 && view.epoch === 0) return undefined;
    return fail("feed.malformed", `The state file holds version ${view.version} of epoch ${view.epoch} and no signed head`);
  }
  const parsed = signedHeadSchema.safeParse(view.head);
  if (!parsed.success) return fail("feed.malformed", `The signed head is malformed: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  const signed = parsed.data;
  const head = checkSigner(signed, ctx);
  if ((head.scope ?? "") !== (view.scope ?? ""))
    return fail("feed.wrong_scope", `The head is narrowed to "${head.scope ?? ""}", the view to "${view.scope ?? ""}"`);
  if (head.version !== view.version || head.epoch !== view.epoch) {
    return fail(
      "feed.content_mismatch",
      `The head is of version ${head.version} (epoch ${head.epoch}), the view of version ${view.version} (epoch ${view.epoch})`,
      { version: head.version, epoch: head.epoch },
    );
  }
  return signed;
}

/** A response that passed every check, with its parsed entries. */
export interface VerifiedResponse {
  readonly signed: SignedHead;
  readonly head: FeedHead;
  readonly entries: readonly FeedEntry[];
  readonly next: string | undefined;
}

/**
 * Verifies one feed response of the kind asked for (a page of a snapshot, or deltas). A delta
 * must continue exactly from `ctx.version`; its entries must lie in (since, version], in
 * order. A snapshot page's entries all carry the snapshot's version, and its `next` cursor is
 * the one its head commits to.
 */
export function verifyResponse(input: unknown, ctx: VerifyContext, expected: FeedHead["kind"]): VerifiedResponse {
  const shape = feedResponseSchema.safeParse(input);
  if (!shape.success) {
    // A forged or garbled head is reported as such even when the entries are garbled too.
    verifyHead((input as { signed?: unknown } | null)?.signed, ctx);
    return fail("feed.malformed", `The response is malformed: ${shape.error.issues[0]?.message ?? "invalid"}`);
  }
  const response: FeedResponse = shape.data;
  const signed = checkHead(response.signed, ctx);
  const head = signed.head;
  // A snapshot page answering a delta poll (or deltas answering a snapshot request) continues nothing this PEP asked for.
  if (head.kind !== expected)
    return fail("feed.wrong_kind", `Asked for ${expected === "delta" ? "deltas" : "a snapshot page"}, got a ${head.kind} head`, {
      kind: head.kind,
    });
  if ((response.next === undefined ? undefined : cursorHash(response.next)) !== head.next) {
    return fail("feed.content_mismatch", "The response's next cursor is not the one its head commits to");
  }
  if (head.kind === "delta") {
    if (head.cursor !== undefined || head.next !== undefined) return fail("feed.malformed", "A delta head names a snapshot cursor");
    if (head.since !== ctx.version) {
      return fail("feed.gap", `The deltas start after version ${head.since}, this PEP is at ${ctx.version}`, {
        since: head.since,
        held: ctx.version,
      });
    }
    let previous = head.since;
    for (const entry of response.entries) {
      if (entry.version <= head.since || entry.version > head.version || entry.version < previous) {
        return fail("feed.gap", `Entry version ${entry.version} is out of order or outside (${head.since}, ${head.version}]`, {
          entry: entry.version,
        });
      }
      previous = entry.version;
    }
  }
  if (contentHash(response.entries) !== head.contentHash)
    return fail("feed.content_mismatch", "The entries do not match the head's content hash");
  if (head.kind === "snapshot" && response.entries.some((entry) => entry.version !== head.version)) {
    return fail("feed.content_mismatch", `A snapshot entry is not at the snapshot's version ${head.version}`);
  }
  return { signed, head, entries: response.entries, next: response.next };
}

/**
 * The head of an idle long poll (HTTP 304, base64 JSON in the `simroot-feed-head` header):
 * a delta from the version held to itself, with no entries. Accepting it only extends
 * the view's freshness.
 */
export function verifyIdleHead(headerValue: string, ctx: VerifyContext): SignedHead {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(headerValue, "base64").toString("utf8"));
  } catch {
    return fail("feed.malformed", "The idle head header is not base64 JSON");
  }
  return verifyIdleSigned(decoded, ctx);
}

/** An idle head already decoded (a streamed feed's `head` event): a delta from the version held to itself, with no entries. */
export function verifyIdleSigned(input: unknown, ctx: VerifyContext): SignedHead {
  const signed = verifyHead(input, ctx);
  const head = signed.head;
  if (head.kind !== "delta" || head.since !== ctx.version || head.version !== ctx.version) {
    return fail(
      "feed.gap",
      `An idle head must be a delta from ${ctx.version} to itself (got ${head.kind} ${head.since}..${head.version})`,
      {
        since: head.since,
        version: head.version,
      },
    );
  }
  if (head.contentHash !== contentHash([])) return fail("feed.content_mismatch", "An idle head must commit to no entries");
  return signed;
}

/** The pages of one snapshot collected so far. */
export interface SnapshotAssembly {
  readonly version: number;
  readonly epoch: number;
  readonly pages: number;
  /** The hash of the cursor the next page must answer (the last page's `next`). */
  readonly next: string | undefined;
  /** Every page's entries so far, in order: appended to as pages arrive (copying them at each page took quadratic time). */
  readonly entries: FeedEntry[];
}

export type SnapshotProgress =
  | { readonly complete: false; readonly assembly: SnapshotAssembly }
  | { readonly complete: true; readonly version: number; readonly entries: readonly FeedEntry[]; readonly signed: SignedHead };

/**
 * Adds a verified snapshot page to `assembly` (undefined before page 0). Pages must come in
 * order, all at one version; the snapshot is complete with the page marked `last`.
 */
export function addSnapshotPage(assembly: SnapshotAssembly | undefined, page: VerifiedResponse): SnapshotProgress {
  const head = page.head;
  if (head.kind !== "snapshot") return fail("feed.gap", "Expected a snapshot page, got deltas");
  const expected = assembly?.pages ?? 0;
  if (head.page !== expected)
    return fail("feed.gap", `Expected snapshot page ${expected}, got page ${head.page}`, { page: head.page, expected });
  if (assembly && (head.version !== assembly.version || head.epoch !== assembly.epoch)) {
    return fail(
      "feed.gap",
      `Snapshot page ${head.page} is at version ${head.version} (epoch ${head.epoch}), earlier pages at ${assembly.version} (epoch ${assembly.epoch})`,
      {
        version: head.version,
      },
    );
  }
  // Page 0 answers no cursor; every later page answers the cursor its predecessor's head committed to.
  if (head.cursor !== assembly?.next)
    return fail("feed.gap", `Snapshot page ${head.page} does not continue the pages before it (cursor)`, { page: head.page });
  if (!head.last && head.next === undefined)
    return fail("feed.malformed", "A snapshot page that is not the last commits to no next cursor");
  const entries = assembly?.entries ?? [];
  for (const entry of page.entries) entries.push(entry);
  if (head.last) return { complete: true, version: head.version, entries, signed: page.signed };
  return { complete: false, assembly: { version: head.version, epoch: head.epoch, pages: expected + 1, next: head.next, entries } };
}
