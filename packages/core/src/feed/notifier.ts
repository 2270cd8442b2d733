/**
 * The feed's push channel: "the tenant's head moved to version V", told to every instance and
 * every PEP following the tenant, so that none of them has to hold a connection open on an
 * instance (or poll the head) to learn of a change. A notice is a hint, never authority: what
 * a PEP applies is the signed response it then fetches and verifies, so a lost, late or forged
 * notice costs at most a fetch (or the fallback poll's delay), never a wrong view.
 *
 * Topics per tenant: `simroot/<tenantId>/feed`, and the same notices bare (the version alone) on
 * `simroot/<tenantId>/feed/bare`, the one a key bound to a selector may follow. In AWS the channel is AWS IoT Core (publish
 * through the data plane's HTTPS API, PEPs subscribe over MQTT); locally it is the feed hub of
 * packages/local, which speaks the same Publish wire protocol (see iot-notifier.ts).
 *
 * A notice may carry the change itself: `response`, the signed delta from the version before to `version`, exactly
 * what a poll from that version would answer (signed head, entries). A PEP at that version verifies it as it would a
 * polled response and applies it without a request; any other PEP (further behind, scoped to a label selector, or
 * given a response that does not verify) polls as before. Still no authority: a forged response fails the signature.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import type { FeedEntry, FeedResponse } from "./wire.ts";

export interface HeadMoved {
  readonly tenantId: string;
  readonly version: number;
  /** The signed delta that brings a PEP from the version before to `version` (unverified as received). */
  readonly response?: unknown;
}

/** What the instance that sequenced a change knows of it: the entries it brought after `since`. */
export interface CommitNews {
  readonly tenantId: string;
  readonly version: number;
  readonly since?: number;
  readonly entries?: readonly FeedEntry[];
}

/** Signs the delta a notice carries (the feed's signer), or gives none (too large, or the signer failed). */
export type NoticeSealer = (delta: {
  readonly tenantId: string;
  readonly since: number;
  readonly version: number;
  readonly entries: readonly FeedEntry[];
}) => Promise<FeedResponse | undefined>;

/**
 * The largest notice that carries its delta, in bytes. AWS IoT Core bills a message per 5 KB to each subscriber; a
 * notice of up to two such units costs a PEP less than a bare notice and the poll it saves (an API Gateway request and
 * a short Lambda invocation), so a larger delta travels as a bare notice and is polled for.
 */
export const noticeDeltaMaxBytes = 10 * 1024;
/** What AWS IoT Core bills as one message, to each subscriber: a notice larger than this is sent gzipped. */
export const iotMessageUnitBytes = 5 * 1024;
/** A gzipped notice that inflates past this is not one (a notice carries at most `mergedEntriesMax` entries). */
const inflatedMaxBytes = 1024 * 1024;
/** A burst merged into one notice past this many entries is sent bare (it would not fit anyway). */
const mergedEntriesMax = 100;

export interface FeedNotifier {
  /**
   * Tells whoever follows the tenant that its head reached `version`, with the change signed by `seal` when it is given
   * the entries since the version before. Best effort: never throws.
   */
  publish(notice: CommitNews, seal?: NoticeSealer): Promise<void>;
  /**
   * Resolves once no notice is being sent (or after `timeoutMs`). A Lambda awaits it before it returns: what it sends
   * in the background after that would be frozen with the execution environment until its next invocation.
   */
  settled?(timeoutMs: number): Promise<void>;
  /**
   * Calls `listener` with every notice of the tenant, whichever instance committed it, and with
   * `undefined` when the channel was interrupted (notices may have been missed: read the head).
   * Returns the unsubscribe. Absent where instances do not subscribe (Lambda).
   */
  subscribe?(tenantId: string, listener: (notice: HeadMoved | undefined) => void): () => void;
}

export const feedTopic = (tenantId: string) => `simroot/${tenantId}/feed`;

/**
 * The topic of the same notices bare: the head's version alone, never its delta. A key bound to a selector may follow
 * only this one (subscriber-authorizer.ts): a delta is the whole tenant's change, every site's devices and addresses
 * (review 98: a bound key read them off the feed topic, though its feed holds it to its own site).
 */
export const feedBareTopic = (tenantId: string) => `simroot/${tenantId}/feed/bare`;

/**
 * The MQTT client id a PEP follows the channel with: its API key's id, then a suffix of its own (two connections with
 * one client id would disconnect each other). The channel's authorizer holds the id to the key (subscriber-authorizer.ts).
 */
export function feedClientId(apiKey: string, suffix?: string): string {
  const keyId = /^sr_(key_[0-9A-HJKMNP-TV-Z]{26})_/.exec(apiKey)?.[1];
  if (!keyId) throw new Error("not a simroot API key");
  if (suffix !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(suffix)) throw new Error("a client id suffix is 1 to 64 of A-Z a-z 0-9 _ -");
  return suffix ? `${keyId}.${suffix}` : keyId;
}

/** True for a gzip stream (RFC 1952: it starts with 0x1f 0x8b; a JSON notice starts with `{`). */
const gzipped = (payload: Uint8Array) => payload[0] === 0x1f && payload[1] === 0x8b;

/** A notice's JSON text from its payload as received: the text itself, or gzipped (undefined when that is not gzip). */
export function noticeText(payload: string | Uint8Array): string | undefined {
  if (typeof payload === "string") return payload;
  if (!gzipped(payload)) return Buffer.from(payload).toString("utf8");
  try {
    return gunzipSync(payload, { maxOutputLength: inflatedMaxBytes }).toString("utf8");
  } catch {
    return undefined;
  }
}

/**
 * Parses a notice's payload (JSON, or JSON gzipped: `noticePayload`); undefined when it is not one (the channel carries
 * no authority).
 */
export function parseHeadMoved(payload: string | Uint8Array): HeadMoved | undefined {
  try {
    const text = noticeText(payload);
    if (text === undefined) return undefined;
    const parsed = JSON.parse(text) as Partial<HeadMoved>;
    if (typeof parsed.tenantId === "string" && Number.isSafeInteger(parsed.version) && parsed.version! >= 0) {
      return {
        tenantId: parsed.tenantId,
        version: parsed.version!,
        ...(parsed.response === undefined ? {} : { response: parsed.response }),
      };
    }
  } catch {}
  return undefined;
}

/**
 * A notice's payload: with its signed delta when it fits in `noticeDeltaMaxBytes`, else bare. JSON; gzipped when the
 * JSON is over one IoT Core message (`iotMessageUnitBytes`): a busy tenant's second of attaches (~60 entries, ~10 KB,
 * two messages to every PEP) gzips to about a quarter, one message. A PEP tells the two apart by their first bytes.
 */
export function noticePayload(notice: HeadMoved & { readonly response?: FeedResponse }): Uint8Array {
  const bare = { tenantId: notice.tenantId, version: notice.version };
  if (notice.response) {
    const full = new TextEncoder().encode(JSON.stringify({ ...bare, response: notice.response }));
    if (full.byteLength <= iotMessageUnitBytes) return full;
    const packed = gzipSync(full);
    const smaller = packed.byteLength < full.byteLength ? packed : full;
    if (smaller.byteLength <= noticeDeltaMaxBytes) return smaller;
  }
  return new TextEncoder().encode(JSON.stringify(bare));
}

interface Pending {
  version: number;
  since?: number;
  entries?: FeedEntry[];
  seal?: NoticeSealer;
}

/** `next` followed by `news`: one delta when they are contiguous, else `news` alone (a PEP behind it polls). */
function merged(next: Pending | undefined, news: CommitNews, seal: NoticeSealer | undefined): Pending {
  const own = {
    version: news.version,
    ...(news.since === undefined || !news.entries ? {} : { since: news.since, entries: [...news.entries] }),
    ...(seal ? { seal } : {}),
  };
  if (!next?.entries || next.since === undefined || !own.entries || own.since !== next.version) return own;
  const entries = [...next.entries, ...own.entries];
  return entries.length > mergedEntriesMax ? { version: own.version, ...(seal ? { seal } : {}) } : { ...own, since: next.since, entries };
}

/**
 * Publishes at most one notice per tenant at a time: a burst of commits while a publish is in
 * flight ends in one more publish, of the newest version (notices only ever move forward), carrying the burst's
 * entries as one signed delta when they follow each other (one signature per publish, not per commit).
 */
export function coalescing(
  send: (notice: HeadMoved & { readonly response?: FeedResponse }) => Promise<void>,
  onError: (error: unknown) => void = () => {},
): Required<Pick<FeedNotifier, "publish" | "settled">> {
  const tenants = new Map<string, { sending: boolean; next?: Pending; sent: number }>();
  const inFlight = new Set<Promise<void>>();
  const publish = (news: CommitNews, seal?: NoticeSealer): Promise<void> => {
    let tenant = tenants.get(news.tenantId);
    if (!tenant) tenants.set(news.tenantId, (tenant = { sending: false, sent: 0 }));
    if (news.version <= Math.max(tenant.sent, tenant.next?.version ?? 0)) return Promise.resolve();
    tenant.next = merged(tenant.next, news, seal);
    if (tenant.sending) return Promise.resolve();
    tenant.sending = true;
    const run = drain(news.tenantId, tenant);
    inFlight.add(run);
    const done = () => void inFlight.delete(run);
    run.then(done, done);
    return run;
  };
  const drain = async (tenantId: string, tenant: { sending: boolean; next?: Pending; sent: number }): Promise<void> => {
    try {
      while (tenant.next !== undefined) {
        const next = tenant.next;
        tenant.next = undefined;
        try {
          const { version, since, entries } = next;
          const response =
            next.seal && since !== undefined && entries
              ? await next.seal({ tenantId, since, version, entries }).catch((error: unknown) => {
                  onError(error);
                  return undefined;
                })
              : undefined;
          await send({ tenantId, version, ...(response ? { response } : {}) });
          tenant.sent = Math.max(tenant.sent, version);
        } catch (error) {
          onError(error);
        }
      }
    } finally {
      tenant.sending = false;
      // Nothing in flight: forget the tenant (bounded by the tenants publishing right now).
      tenants.delete(tenantId);
    }
  };
  const settled = async (timeoutMs: number): Promise<void> => {
    if (inFlight.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.all(inFlight), timeout]);
    clearTimeout(timer);
  };
  return { publish, settled };
}

/** How long a Lambda waits, before it returns, for the notices it is still sending (then it leaves them to the PEPs' idle poll). */
export const noticeSettleMs = 2_000;
