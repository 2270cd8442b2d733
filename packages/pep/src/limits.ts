/**
 * What the PEP reads and holds of a feed response at most, even a signed one (a compromised or buggy control plane):
 * beyond these it refuses the response (`feed.too_large`) before it is parsed or the snapshot is assembled, keeps the
 * view it had, and backs off (review 88: an unbounded snapshot, or a deeply nested value, was refused only once it had
 * been read, parsed and held whole). Sized from the product's design so that no genuine feed comes near them: a tenant
 * of up to 1M devices (docs/write-path.md), followed by up to 10,000 PEPs (docs/feed-distribution.md), which ask for
 * pages of 1,000 entries (`SyncOptions.limit`; the control plane allows 1 to 5,000).
 */
import { FeedVerificationError } from "./verify.ts";

export interface FeedLimits {
  /**
   * Entries of one snapshot, all its pages together. A 1M-device tenant's snapshot lists each device (its view, or its
   * revocation marker), the IP addresses bound (one or two a device: IPv4 and IPv6), the rules, grants and settings,
   * and the changes replayed while it was taken: about 3M entries. 5M leaves room. Measured (2026-12-06, node 24): an
   * entry held while the snapshot is assembled takes about 220 bytes of heap, and about 210 once in the view, so a
   * snapshot at the bound peaks near 2 GB as it completes.
   */
  readonly maxSnapshotEntries: number;
  /**
   * Bytes of one response body, or of one streamed event, read before it is parsed (a `content-length` above it is
   * refused before the body is read). A page of 1,000 entries is about 160 KB (a device or binding entry is ~160 bytes
   * of JSON; 5,000: about 1 MB); the first page also carries every rule and grant (each at most 64 KB as JSON, core
   * `maxPolicyBytes`), and in AWS a response is at most the 6 MB Lambda answers.
   */
  readonly maxBodyBytes: number;
  /**
   * Nesting of arrays and objects in a response. A feed response nests about 10 deep (response, entries, entry, value,
   * a rule's selector and its expressions' values); JSON.parse builds any depth, and a value nested deeper than the
   * stack is then hashed and saved recursively.
   */
  readonly maxJsonDepth: number;
}

export const feedLimits: FeedLimits = {
  maxSnapshotEntries: 5_000_000,
  maxBodyBytes: 64 * 2 ** 20,
  maxJsonDepth: 64,
};

/**
 * Pages of one snapshot at most, asking for `limit` entries a page. Every page of a snapshot but the last brings `limit`
 * entries, or (a PEP narrowed by a selector) was cut after scanning ten times that many items (core feed.ts
 * `scanPerEntry`): a snapshot within `maxSnapshotEntries` takes at most 1.1 times its full pages. Twice, and one: a
 * 1M-device tenant at 1,000 a page takes about 3,000 pages; this allows 10,001.
 */
export const maxSnapshotPages = (limits: FeedLimits, limit: number) => 2 * Math.ceil(limits.maxSnapshotEntries / Math.max(1, limit)) + 1;

const tooLarge = (message: string, detail: Record<string, unknown> = {}) => new FeedVerificationError("feed.too_large", message, detail);

/** Refuses a body of `bytes` (declared or read so far) above the bound. */
export function checkBodyBytes(bytes: number, limits: FeedLimits): void {
  if (bytes > limits.maxBodyBytes) throw tooLarge(`The feed sent a body of more than ${limits.maxBodyBytes} bytes`, { bytes });
}

const open = new Set([0x5b, 0x7b]); // [ {
const close = new Set([0x5d, 0x7d]); // ] }

/**
 * Parses a response (its bytes, or a streamed event's text) once its size and nesting are within the bounds: one pass
 * over it first, counting the depth of brackets outside strings (in UTF-8 no byte of a multi-byte character is ASCII).
 */
export function parseFeedJson(body: Buffer | string, limits: FeedLimits): unknown {
  const length = body.length;
  checkBodyBytes(length, limits);
  const at = typeof body === "string" ? (index: number) => body.charCodeAt(index) : (index: number) => body[index]!;
  let depth = 0;
  let inString = false;
  for (let index = 0; index < length; index++) {
    const code = at(index);
    if (inString) {
      if (code === 0x5c)
        index++; // a backslash escapes the next character
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (open.has(code)) {
      if (++depth > limits.maxJsonDepth)
        throw tooLarge(`The feed sent JSON nested more than ${limits.maxJsonDepth} deep`, { maxJsonDepth: limits.maxJsonDepth });
    } else if (close.has(code)) depth--;
  }
  return JSON.parse(typeof body === "string" ? body : body.toString("utf8"));
}

/** Refuses to ask for another page of a snapshot that already took `pages` pages of `limit` entries. */
export function checkSnapshotPages(pages: number, limit: number, limits: FeedLimits): void {
  const most = maxSnapshotPages(limits, limit);
  if (pages >= most) throw tooLarge(`The snapshot goes on past ${most} pages of ${limit} entries`, { pages });
}

/** Refuses a snapshot page (parsed, not yet verified) that would bring the snapshot past `maxSnapshotEntries`. */
export function checkSnapshotEntries(held: number, page: unknown, limits: FeedLimits): void {
  const entries = (page as { entries?: unknown } | null)?.entries;
  const total = held + (Array.isArray(entries) ? entries.length : 0);
  if (total > limits.maxSnapshotEntries)
    throw tooLarge(`The snapshot brings more than ${limits.maxSnapshotEntries} entries`, { entries: total });
}
