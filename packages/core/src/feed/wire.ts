/**
 * The policy feed as it travels to enforcement points (PEPs), shared by the server that
 * signs it and the PEP that verifies it. TUF-style integrity: every response carries a
 * signed head that names the tenant, the version the content brings the PEP to, a hash
 * committing to the content, and a short expiry; the PEP refuses rollbacks, gaps, content
 * that does not match its head, and heads past their expiry (freeze attacks).
 */
import * as z from "zod";
import { canonicalJson } from "../ledger/chain.ts";
import { createHash } from "node:crypto";

/** One thing a PEP must learn: an item of its replicated view, set (value) or removed (null). */
export const feedEntrySchema = z
  .object({
    version: z.number().int().positive(),
    kind: z.enum(["device", "binding", "policy", "grant", "settings"]),
    key: z.string(),
    value: z.record(z.string(), z.unknown()).nullable(),
  })
  .meta({ id: "FeedEntry" });
export type FeedEntry = z.output<typeof feedEntrySchema>;

/**
 * At most this far ahead does a head expire: a PEP cut off from the control plane (or fed a
 * replayed genuine head by someone on the path who withholds a change) fails closed within
 * it, plus its configured clock-skew tolerance (at most `maxClockSkewSeconds`): together at
 * most 10 s.
 */
export const maxHeadLifetimeSeconds = 8;
/** The largest clock-skew tolerance a PEP may be configured with. */
export const maxClockSkewSeconds = 2;

export const feedHeadSchema = z
  .object({
    tenantId: z.string(),
    /**
     * The tenant's feed epoch: only an admin advances it (after a restore or a key rotation). A PEP
     * accepts a version below the one it holds only from a snapshot of a higher epoch.
     */
    epoch: z.number().int().nonnegative(),
    /** What the response is: a page of the snapshot, or the deltas after `since`. */
    kind: z.enum(["snapshot", "delta"]),
    /** delta: the version the PEP had (the response holds every entry after it, up to `version`). */
    since: z.number().int().nonnegative(),
    /** The version the PEP is at once it applied this response (for a snapshot: once it applied every page). */
    version: z.number().int().nonnegative(),
    /** snapshot pages: which page of how many (a PEP applies a snapshot only once it has them all). */
    page: z.number().int().nonnegative(),
    last: z.boolean(),
    /** snapshot pages after the first: SHA-256 (hex) of the cursor this page answers (the previous page's `next`). */
    cursor: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    /** snapshot pages but the last: SHA-256 (hex) of the `next` cursor the response carries. */
    next: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    /** A narrowed feed's label selector, canonical (see scope.ts); absent for the whole tenant. */
    scope: z.string().optional(),
    /** SHA-256 (hex) of the canonical JSON of `entries`. */
    contentHash: z.string().regex(/^[0-9a-f]{64}$/),
    issuedAt: z.string(),
    expiresAt: z.string(),
  })
  .meta({ id: "FeedHead" });
export type FeedHead = z.output<typeof feedHeadSchema>;

export const signedHeadSchema = z
  .object({
    head: feedHeadSchema,
    /** Ed25519 signature (base64) over the canonical JSON of `head`. */
    signature: z.string(),
    keyId: z.string(),
  })
  .meta({ id: "SignedFeedHead" });
export type SignedHead = z.output<typeof signedHeadSchema>;

export const feedResponseSchema = z
  .object({
    signed: signedHeadSchema,
    entries: z.array(feedEntrySchema),
    /** snapshot: pass back as `cursor` for the next page. */
    next: z.string().optional(),
  })
  .meta({ id: "FeedResponse" });
export type FeedResponse = z.output<typeof feedResponseSchema>;

export const contentHash = (entries: readonly FeedEntry[]) => createHash("sha256").update(canonicalJson(entries)).digest("hex");

/** What a head commits to for a snapshot cursor (`cursor`, `next`). */
export const cursorHash = (cursor: string) => createHash("sha256").update(cursor).digest("hex");

/** The bytes a head's signature covers. */
export const headBytes = (head: FeedHead) => Buffer.from(canonicalJson(head));

/** Idle long polls answer 304 with the re-issued signed head in this header (base64 of its JSON). */
export const headHeader = "simroot-feed-head";

/** The feed value of an IP binding, from its identity-table item. */
export const bindingValue = (item: Record<string, unknown>): Record<string, unknown> => ({
  deviceId: item.deviceId,
  address: item.address,
  bearer: item.bearer,
  ...(item.apn ? { apn: item.apn } : {}),
  ...(item.country ? { country: item.country } : {}),
});
