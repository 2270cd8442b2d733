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
  feedResponseSchema,
  headBytes,
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
  "feed.rollback": "conflict",
  "feed.gap": "conflict",
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
  /** Epoch milliseconds. */
  readonly now: number;
}

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

/** `verifyHead` for a head already parsed. */
function checkHead(signed: SignedHead, ctx: VerifyContext): SignedHead {
  if (!signatureValid(signed, ctx.publicKeys)) return fail("feed.bad_signature", `The head's signature is not by a pinned key (keyId ${signed.keyId})`, { keyId: signed.keyId });
  const head = signed.head;
  if (head.tenantId !== ctx.tenantId) return fail("feed.wrong_tenant", `The head is for tenant ${head.tenantId}, this PEP enforces ${ctx.tenantId}`, { tenantId: head.tenantId });
  // A genuine response for another site's selector would add its devices and remove this one's.
  if ((head.scope ?? "") !== (ctx.scope ?? "")) {
    return fail("feed.wrong_scope", `The head is narrowed to "${head.scope ?? ""}", this PEP follows "${ctx.scope ?? ""}"`, { scope: head.scope ?? null });
  }
  if (head.version < ctx.version) {
    return fail("feed.rollback", `The head brings version ${head.version}, below the version held (${ctx.version})`, { version: head.version, held: ctx.version });
  }
  const issuedAt = Date.parse(head.issuedAt);
  const expiresAt = Date.parse(head.expiresAt);
  if (Number.isNaN(issuedAt) || Number.isNaN(expiresAt)) return fail("feed.malformed", "The head's issuedAt or expiresAt is not a date");
  if (expiresAt - issuedAt > maxHeadLifetimeSeconds * 1000 || expiresAt < issuedAt) {
    return fail("feed.expired", `The head claims a lifetime beyond ${maxHeadLifetimeSeconds} s`, { issuedAt: head.issuedAt, expiresAt: head.expiresAt });
  }
  if (expiresAt <= ctx.now) return fail("feed.expired", `The head expired at ${head.expiresAt}`, { expiresAt: head.expiresAt });
  if (head.kind === "delta" && head.version < head.since) return fail("feed.malformed", "A delta head's version is below its since");
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
 * Verifies one feed response (a page of a snapshot, or deltas). A delta must continue
 * exactly from `ctx.version`; its entries must lie in (since, version], in order. A snapshot
 * page's entries all carry the snapshot's version.
 */
export function verifyResponse(input: unknown, ctx: VerifyContext): VerifiedResponse {
  const shape = feedResponseSchema.safeParse(input);
  if (!shape.success) {
    // A forged or garbled head is reported as such even when the entries are garbled too.
    verifyHead((input as { signed?: unknown } | null)?.signed, ctx);
    return fail("feed.malformed", `The response is malformed: ${shape.error.issues[0]?.message ?? "invalid"}`);
  }
  const response: FeedResponse = shape.data;
  const signed = checkHead(response.signed, ctx);
  const head = signed.head;
  if (head.kind === "delta") {
    if (head.since !== ctx.version) {
      return fail("feed.gap", `The deltas start after version ${head.since}, this PEP is at ${ctx.version}`, { since: head.since, held: ctx.version });
    }
    let previous = head.since;
    for (const entry of response.entries) {
      if (entry.version <= head.since || entry.version > head.version || entry.version < previous) {
        return fail("feed.gap", `Entry version ${entry.version} is out of order or outside (${head.since}, ${head.version}]`, { entry: entry.version });
      }
      previous = entry.version;
    }
  }
  if (contentHash(response.entries) !== head.contentHash) return fail("feed.content_mismatch", "The entries do not match the head's content hash");
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
  const signed = verifyHead(decoded, ctx);
  const head = signed.head;
  if (head.kind !== "delta" || head.since !== ctx.version || head.version !== ctx.version) {
    return fail("feed.gap", `An idle head must be a delta from ${ctx.version} to itself (got ${head.kind} ${head.since}..${head.version})`, {
      since: head.since,
      version: head.version,
    });
  }
  if (head.contentHash !== contentHash([])) return fail("feed.content_mismatch", "An idle head must commit to no entries");
  return signed;
}

/** The pages of one snapshot collected so far. */
export interface SnapshotAssembly {
  readonly version: number;
  readonly pages: number;
  readonly entries: readonly FeedEntry[];
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
  if (head.page !== expected) return fail("feed.gap", `Expected snapshot page ${expected}, got page ${head.page}`, { page: head.page, expected });
  if (assembly && head.version !== assembly.version) {
    return fail("feed.gap", `Snapshot page ${head.page} is at version ${head.version}, earlier pages at ${assembly.version}`, { version: head.version });
  }
  const entries = assembly ? [...assembly.entries, ...page.entries] : [...page.entries];
  if (head.last) return { complete: true, version: head.version, entries, signed: page.signed };
  return { complete: false, assembly: { version: head.version, pages: expected + 1, entries } };
}
