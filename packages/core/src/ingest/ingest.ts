/**
 * Webhook ingestion: authenticate with the source's credentials, translate with its format
 * adapter, and publish every accepted fact durably before answering. Nothing is recorded
 * for an unauthenticated request; a batch reports per item.
 */
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { isSimrootError, SimrootError, type FieldIssue } from "../error.ts";
import { claimIdempotencyKey, completeIdempotencyKey, completedAnswer, releaseIdempotencyKey } from "../store/idempotency.ts";
import type { Ports } from "../ports.ts";
import type { Bearer, NormalizedEvent } from "../catalogue/catalogue.ts";
import type { RequestContext } from "../context.ts";
import { domainEvent } from "../event/event.ts";
import type { Adapter, AdapterItem, IngestFormat, IngestRequest, SourceCredentials } from "./adapter.ts";
import { boundedEvent } from "./clock.ts";
import { rateLimitHeaders, takeSourceRequest } from "../access/rate-limit.ts";
import { admitIngest, type IngestAdmission } from "./backlog.ts";
import { ingestedEvent } from "./ingested.ts";
import { tooManyForDevice } from "./reported.ts";
import { noteIngest } from "./source-health.ts";
import { sourceAuthenticated, sourceCached, sourceIfAny } from "./source.ts";

export interface IngestResult {
  readonly sourceId: string;
  /** `clampedFrom`: the sender dated the event beyond the allowed clock skew; it is ordered at the receive time. */
  readonly accepted: { readonly index: number; readonly id: string; readonly type: string; readonly clampedFrom?: string }[];
  /** `unlistedErrors`: how many of the item's errors the answer does not list (`boundedResult`). */
  readonly rejected: { readonly index: number; readonly errors: readonly FieldIssue[]; readonly unlistedErrors?: number }[];
}

/**
 * The most bytes of JSON an answer takes. A simroot answer is kept for its webhook-id in one DynamoDB item (400 KB with
 * its key): 999 rejected items of 172 bytes, each with a dozen wrong fields, were answered with 1 MB of errors, and the
 * write of that answer failed after the events were published (a 500, on every retry of the sender's: review 80).
 */
export const maxAnswerBytes = 300 * 1024;
/** Errors listed for one rejected item; the rest are counted. */
export const maxErrorsPerItem = 10;
/** Characters of an error's path (the sender's own keys may be in it) and of its message kept in the answer. */
const maxPathLength = 256;
const maxMessageLength = 512;
/**
 * Characters of a stated time echoed as `clampedFrom` (RFC 3339 bounds no fraction of a second); longer, it is normalized.
 * The catalogue refuses a stated time over 35 characters (review 83): this keeps the answer's bound whatever it accepts.
 */
const maxStatedTimeLength = 64;

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));
/** The first `length` characters of `text` (a surrogate pair is not split), marked as cut. */
function cut(text: string, length: number): string {
  if (text.length <= length) return text;
  const last = text.charCodeAt(length - 1);
  return `${text.slice(0, last >= 0xd800 && last <= 0xdbff ? length - 1 : length)}…`;
}
const unlisted = (count: number) => (count > 0 ? { unlistedErrors: count } : {});

/**
 * The answer within `maxAnswerBytes`, the same on the first try and on a retry (the one kept). Every accepted event and
 * every rejected item is named (1,000 at most a request: under 200 KB); a rejected item lists its first
 * `maxErrorsPerItem` errors, cut to length, in index order while the bytes last, and counts the rest (`unlistedErrors`).
 */
export function boundedResult(
  sourceId: string,
  accepted: IngestResult["accepted"],
  rejected: readonly { readonly index: number; readonly errors: readonly FieldIssue[] }[],
): IngestResult {
  const named = accepted.map((item) =>
    item.clampedFrom === undefined || item.clampedFrom.length <= maxStatedTimeLength
      ? item
      : // Clamped because it lies ahead of now, so it is a time Date reads.
        { ...item, clampedFrom: new Date(item.clampedFrom).toISOString() },
  );
  // The answer with no error listed: an item's count takes at most these bytes (listing errors shortens it).
  const bare = rejected.map((item) => ({ index: item.index, errors: [], ...unlisted(item.errors.length) }));
  let room = maxAnswerBytes - jsonBytes({ sourceId, accepted: named, rejected: bare });
  const listed = rejected.map((item, n) => {
    const errors = item.errors
      .slice(0, maxErrorsPerItem)
      .map((issue) => ({ path: cut(issue.path, maxPathLength), message: cut(issue.message, maxMessageLength) }));
    const bytes = jsonBytes(errors) - 2; // beyond the `[]` counted
    if (bytes > room) return bare[n]!;
    room -= bytes;
    return { index: item.index, errors, ...unlisted(item.errors.length - errors.length) };
  });
  return { sourceId, accepted: named, rejected: listed };
}

/**
 * The errors of a body none of whose items was accepted, as its problem's issues, bounded as an answer is
 * (`boundedResult`): a last issue counts those not listed. Listed whole, 1,000 items of a dozen errors made 1 MB.
 */
function boundedIssues(rejected: readonly { readonly index: number; readonly errors: readonly FieldIssue[] }[]): FieldIssue[] {
  const listed = boundedResult("", [], rejected).rejected;
  const issues = listed.flatMap((item) => item.errors.map((issue) => ({ path: `${item.index}.${issue.path}`, message: issue.message })));
  const more = listed.reduce((count, item) => count + (item.unlistedErrors ?? 0), 0);
  return more > 0 ? [...issues, { path: "", message: `${more} more errors not listed` }] : issues;
}

export async function ingest(
  ports: Ports,
  adapters: Readonly<Record<IngestFormat, Adapter>>,
  sourceId: string,
  request: IngestRequest,
  requestId: string,
): Promise<{ readonly result: IngestResult; readonly rateHeaders: Record<string, string> }> {
  const { source, credentials } = await authenticated(ports, adapters, sourceId, request);
  // Authenticated, and before any parsing: one noisy source cannot take the control plane.
  const rate = rateLimitHeaders(await takeSourceRequest(ports, source.tenantId, source.id));
  try {
    return { result: await accepting(ports, adapters, source, credentials, request, requestId), rateHeaders: rate };
  } catch (error) {
    // Whatever the answer, it says what is left of the source's limit (as the API keys' answers do).
    if (!(error instanceof SimrootError)) throw error;
    const headers = { ...rate, ...((error.detail.headers ?? {}) as Record<string, string>) };
    throw new SimrootError(error.code, error.kind, error.message, {
      issues: [...error.issues],
      detail: { ...error.detail, headers },
      cause: error.cause,
    });
  }
}

/** The body of an authenticated request within its source's rate limit: parsed, admitted, published. */
async function accepting(
  ports: Ports,
  adapters: Readonly<Record<IngestFormat, Adapter>>,
  source: Awaited<ReturnType<typeof authenticated>>["source"],
  credentials: Awaited<ReturnType<typeof authenticated>>["credentials"],
  request: IngestRequest,
  requestId: string,
): Promise<IngestResult> {
  const adapter = adapters[source.format];
  checkMediaType(adapter, request);
  const items = adapter.parse(request, credentials);
  const ctx = { tenantId: source.tenantId, actor: `source:${source.id}`, requestId };
  const now = ports.now();
  const accepted: IngestResult["accepted"] = [];
  const rejected: IngestResult["rejected"] = [];
  const events: ReturnType<typeof ingestedEvent>[] = [];
  for (const item of items) {
    if (!item.ok) {
      rejected.push({ index: item.index, errors: item.issues });
      continue;
    }
    for (const reported of item.events) {
      const normalized = boundedEvent(withDefaultBearer(reported, source.defaultBearer), now, source.maxClockSkewSeconds);
      const event = ingestedEvent(ctx, source.id, source.format, normalized, now);
      events.push(event);
      const clamped = normalized.reportedAt === undefined ? {} : { clampedFrom: normalized.reportedAt };
      accepted.push({ index: item.index, id: event.id, type: event.type, ...clamped });
    }
  }
  const unverified = items.filter((item) => !item.ok && item.unverified);
  if (unverified.length > 0) await recordRefused(ports, ctx, source.id, unverified, now);
  if (accepted.length === 0 && unverified.length === rejected.length && unverified.length > 0) {
    throw new SimrootError("ingest.unverified", "input", "The notification's origin could not be verified: refused and recorded", {
      issues: boundedIssues(rejected),
    });
  }
  if (accepted.length === 0 && rejected.length > 0) {
    throw new SimrootError("ingest.invalid_body", "input", "No event of the body could be accepted", { issues: boundedIssues(rejected) });
  }
  // A device's facts travel in one bus entry, so that they are applied in time order (reported.ts).
  const forDevice = tooManyForDevice(events);
  if (forDevice) throw forDevice;
  const once = onceKey(source.format, request);
  const onceScope = once && `${once.scope}:${source.id}`;
  let admission: IngestAdmission;
  try {
    admission = await admitIngest(ports, events.length, source.tenantId);
  } catch (error) {
    // A redelivery of a request already taken gets its first answer, however long the backlog: refused, its sender would
    // spend its retries on a message that was accepted (review 155). One read, on refusals only.
    const stored = once && (await completedAnswer(ports, onceScope!, once.key, fingerprintOf(request.body)));
    if (stored) return JSON.parse(stored.body ?? "{}") as IngestResult;
    throw error;
  }
  const result = boundedResult(source.id, accepted, rejected);
  const publish = async () => {
    await ports.publisher.publish(events);
    await admission.published();
    ports.metrics?.add("IngestAccepted", events.length);
    // Counted once accepted only: a refused request (401, 400) records nothing, as ever.
    const rejection = rejected[0]?.errors[0];
    await noteIngest(ports, source.tenantId, source.id, {
      accepted: accepted.length,
      rejected: rejected.length,
      ...(rejection ? { rejection: `item ${rejected[0]!.index}: ${rejection.path}: ${rejection.message}` } : {}),
    });
    return result;
  };
  return once === undefined ? publish() : answerOnce(ports, onceScope!, once, request.body, publish);
}

/**
 * What a request is answered once per source by: a Standard Webhooks `webhook-id`; for Twilio, which signs no time nor
 * id, the body's hash its signed URL carries (`bodySHA256`, checked against the body), so that a captured request
 * replayed within 24 hours gets the first answer and changes nothing (review 89; supersim.ts refuses events over 20 h old).
 */
function onceKey(format: IngestFormat, request: IngestRequest): OnceKey | undefined {
  if (format === "simroot") {
    const id = request.headers["webhook-id"];
    return id === undefined ? undefined : { scope: "webhook", key: id, named: `webhook-id ${id}` };
  }
  if (format !== "supersim") return undefined;
  const hash = URL.parse(request.url)?.searchParams.get("bodySHA256")?.toLowerCase();
  return hash ? { scope: "twilio", key: hash, named: `The request whose body hashes to ${hash} (bodySHA256)` } : undefined;
}

interface OnceKey {
  readonly scope: string;
  readonly key: string;
  /** The key as the sender knows it, for the answers that refuse a request by it. */
  readonly named: string;
}

/**
 * Answers a request once per source by its key (`onceKey`): Standard Webhooks' `webhook-id` is the message's idempotency
 * key, Twilio's signed body hash stands in for one. A redelivery (same key, same body) gets the first answer again and
 * publishes nothing; the same key with another body, however validly signed, is refused. Kept 24 h, beyond the
 * 5-minute replay window. A refusal names the key as its sender knows it.
 */
const fingerprintOf = (body: string) => createHash("sha256").update(body).digest("base64url");

async function answerOnce(ports: Ports, scope: string, once: OnceKey, body: string, act: () => Promise<IngestResult>) {
  const fingerprint = fingerprintOf(body);
  const claim = await claimIdempotencyKey(ports, scope, once.key, fingerprint);
  if (claim.kind === "mismatch") {
    throw new SimrootError("ingest.webhook_id_reused", "conflict", `${once.named} was already delivered with another body`);
  }
  if (claim.kind === "in_progress") throw new SimrootError("ingest.webhook_in_progress", "conflict", `${once.named} is being processed`);
  if (claim.kind === "completed") return JSON.parse(claim.response.body ?? "{}") as IngestResult;
  try {
    const result = await act();
    await completeIdempotencyKey(ports, scope, once.key, fingerprint, { status: 202, body: JSON.stringify(result), headers: {} });
    return result;
  } catch (error) {
    await releaseIdempotencyKey(ports, scope, once.key);
    throw error;
  }
}

/**
 * A body labelled with one of the format's media types; an empty one may be unlabelled (a CloudEvent in binary mode
 * without data). What a browser posts cross-origin without a preflight, JSON as `text/plain` or form data or unlabelled,
 * was read as JSON (review 83): refused with 415, naming the types in `Accept-Post`.
 */
function checkMediaType(adapter: Adapter, request: IngestRequest): void {
  const type = request.headers["content-type"]?.split(";")[0]?.trim().toLowerCase();
  const empty = (request.bytes?.length ?? request.body.length) === 0;
  if (type === undefined ? empty : adapter.mediaTypes.includes(type)) return;
  const accepted = adapter.mediaTypes.join(", ");
  throw new SimrootError(
    "ingest.unsupported_media_type",
    "input",
    `A ${adapter.format} source takes its bodies as ${accepted} (Content-Type: ${adapter.mediaTypes[0]})`,
    { detail: { status: 415, headers: { "accept-post": accepted } } },
  );
}

/** A notification whose origin could not be verified (a forged or tampered eUICC signature) is a security signal: audited. */
async function recordRefused(ports: Ports, ctx: RequestContext, sourceId: string, items: readonly AdapterItem[], now: Date) {
  const refusals = items.flatMap((item) => (item.ok ? [] : [{ index: item.index, issues: item.issues }]));
  await ports.ledger.commit({
    tenantId: ctx.tenantId,
    writes: [],
    events: [domainEvent(ctx, "ingest.refused", sourceId, { sourceId, refusals }, now)],
  });
}

/** A private core reports its sessions as cellular: the source says which bearer that really is. */
function withDefaultBearer(event: NormalizedEvent, bearer: Bearer | undefined): NormalizedEvent {
  if (!bearer || !("bearer" in event.data) || event.data.bearer !== "cellular") return event;
  return { ...event, data: { ...event.data, bearer } } as NormalizedEvent;
}

/**
 * Authenticates with the cached credentials, and once more with fresh ones before refusing (they may have rotated;
 * once, with fresh ones, when nothing was cached). A
 * source id that names no source is refused as a source refusing credentials, with the same reads and checks: answered
 * 404 where a source answered 401, it told anybody which source ids exist (review 83). The answer is one, whatever the
 * format's reason (a reason names the format): the reason is the error's cause, for the log.
 */
async function authenticated(ports: Ports, adapters: Readonly<Record<IngestFormat, Adapter>>, sourceId: string, request: IngestRequest) {
  let refusal: unknown;
  // Fresh once: when nothing was cached, the first check read the store already (review 93: it was read again, and
  // every format's check run again over the body, doubling what a request naming a new id costs, credentials or not).
  const checks = sourceCached(ports, sourceId) ? [false, true] : [true];
  for (const fresh of checks) {
    const found = await sourceIfAny(ports, sourceId, fresh);
    refusal = refusalOf(adapters, found, request);
    if (refusal === undefined && found) {
      sourceAuthenticated(ports, sourceId);
      return found;
    }
  }
  throw new SimrootError("ingest.unauthenticated", "auth", "Missing or invalid credentials for this source", { cause: refusal });
}

/**
 * Why the request is not authentic for `found` (undefined: it is). Once the source's own check refuses, every other
 * check a source may make runs too, with credentials nobody holds (`decoys`), and all of them for an id that names no
 * source: a refusal costs the same whether the source exists and whatever it checks (an HMAC of the body when the
 * request carries Standard Webhooks headers, a hash of it when it carries Twilio's, an Ed25519 verification, ...).
 */
function refusalOf(adapters: Readonly<Record<IngestFormat, Adapter>>, found: FoundSource | undefined, request: IngestRequest): unknown {
  let refusal: unknown = new SimrootError("source.not_found", "not_found", "No ingestion source has this id");
  if (found) {
    try {
      adapters[found.source.format].authenticate(request, found.credentials);
      return undefined;
    } catch (error) {
      if (!isSimrootError(error)) throw error;
      refusal = error;
    }
  }
  const all = decoys();
  const own = found && all.find((decoy) => decoy.format === found.source.format && standsFor(decoy.credentials, found.credentials));
  for (const decoy of all) {
    if (decoy === own) continue;
    try {
      adapters[decoy.format].authenticate(request, decoy.credentials);
    } catch {
      // Refused, as it must be: it only costs what the check costs.
    }
  }
  return refusal;
}

type FoundSource = NonNullable<Awaited<ReturnType<typeof sourceIfAny>>>;

/**
 * A decoy stands for a source's own check when the source holds every credential the decoy holds: a source with a v1a
 * key is checked with the key (its decoy is first), though it may hold a secret from before review 80.
 */
const standsFor = (decoy: SourceCredentials, credentials: SourceCredentials) =>
  Object.keys(decoy).every((name) => credentials[name as keyof SourceCredentials] !== undefined);

type Decoy = { readonly format: IngestFormat; readonly credentials: SourceCredentials };
let madeDecoys: readonly Decoy[] | undefined;

/**
 * One set of credentials per check a source may make, held by nobody; the v1a key first (`standsFor`). Made at the
 * first refusal, not at start-up: every function bundling ingestion would otherwise make a key pair at each cold start.
 */
function decoys(): readonly Decoy[] {
  if (madeDecoys) return madeDecoys;
  const secret = (bytes = 32) => randomBytes(bytes).toString("base64url");
  const raw = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  madeDecoys = [
    { format: "simroot", credentials: { webhookPublicKey: `whpk_${raw.toString("base64")}` } },
    { format: "simroot", credentials: { webhookSecret: `whsec_${randomBytes(24).toString("base64")}` } },
    { format: "camara", credentials: { bearerToken: secret() } },
    { format: "nef", credentials: { bearerToken: secret() } },
    { format: "eim", credentials: { bearerToken: secret() } },
    { format: "datastreamer", credentials: { basicUser: secret(6), basicPassword: secret() } },
    { format: "supersim", credentials: { twilioAuthToken: secret() } },
  ];
  return madeDecoys;
}
