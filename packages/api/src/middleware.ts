import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import {
  authenticate,
  isSimrootError,
  countFailure,
  countsFailures,
  failuresSpent,
  newId,
  admitted,
  rateLimited,
  rateLimitHeaders,
  SimrootError,
  takeKeyRequest,
  timeouts,
  withChangeDeadline,
  type Role,
} from "@simroot/core";
import { consoleLog, type AppEnv, type AppOptions } from "./env.ts";
import { idempotent } from "./idempotency.ts";

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** Every response and log line carries a request id: the caller's `X-Request-Id` if sane, else a new one. */
export const requestId = (options: AppOptions) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const given = c.req.header("x-request-id");
    const id = given && requestIdPattern.test(given) ? given : newId("request");
    c.set("requestId", id);
    c.set("ports", options.ports());
    const log = options.log ?? consoleLog;
    c.set("log", log);
    c.header("x-request-id", id);
    const started = performance.now();
    // The request's changes wait for their turn (or a throttle to pass) only while it can still answer (limits.ts).
    await withChangeDeadline(Date.now() + timeouts.apiChangeSeconds * 1000, next);
    if (options.logRequests) {
      log.info("request", {
        requestId: id,
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
        actor: c.get("ctx")?.actor,
      });
    }
  });

/**
 * Every answer that names no cache policy of its own is `Cache-Control: no-store`: the API's answers are a tenant's
 * data (identities, audit, keys), and a browser kept them in its HTTP cache past the console's sign-out, readable back
 * without the key. The console's files, the reference's bundle and the live stream set their own. And every answer is
 * `X-Content-Type-Options: nosniff`: a problem echoes what was asked (a path, a name), and is read as what it says.
 */
export const answerHeaders = createMiddleware(async (c, next) => {
  await next();
  if (!c.res.headers.has("cache-control")) c.res.headers.set("cache-control", "no-store");
  c.res.headers.set("x-content-type-options", "nosniff");
});

/**
 * Failed authentications per client address (core access/auth-failures.ts), shared by every instance through the store:
 * an address past its limit is answered 429 before anything is read or checked, and each 401 it is answered counts.
 * Only requests that present a credential are held to it (review 91): an API key (`Authorization`), or a delivery to an
 * ingestion source, counted per address and source. A request with none costs no check, and was counted too: any web
 * page could make its visitors' browsers spend their address's failures (an image's GET), and lock out the PEPs behind
 * the same NAT. A delivery's count is its source's: providers post every customer's webhooks from shared addresses,
 * and one misconfigured or hostile source there locked out every tenant's deliveries from them.
 */
export const limitFailedAuthentications = (options: AppOptions) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const address = options.clientAddress?.(c);
    const presented = presentedCredential(c.req.path, c.req.header("authorization"));
    if (presented === undefined || !countsFailures(options.authFailures, address)) return next();
    const limit = options.authFailures!;
    const spent = failuresSpent(c.get("ports"), address, limit, presented);
    if (spent) throw spent;
    await next();
    if (c.res.status !== 401) return;
    // Counted before the answer leaves (a frozen Lambda would lose it): one write at most, when a flush is due.
    await countFailure(c.get("ports"), address, limit, presented).catch((error: unknown) =>
      c.get("log").warn("failed authentication not counted", { requestId: c.get("requestId"), error: String(error) }),
    );
  });

const ingestPath = /^\/v1\/ingest\/([^/]+)\/?$/;

/** What credential a request presents: `""` for an API key, `source:<id>` for a delivery to a source; none otherwise. */
function presentedCredential(path: string, authorization: string | undefined): string | undefined {
  const source = ingestPath.exec(path)?.[1];
  if (source !== undefined) return `source:${source.slice(0, 128)}`;
  return authorization === undefined ? undefined : "";
}

/** Resolves the bearer API key to its tenant and role; only `allowed` roles pass. */
export const requireRole = (...allowed: Role[]) =>
  createMiddleware<AppEnv>(async (c, next) => {
    // Once a request: Hono's trie router may hand a route's handlers over twice (a path segment that is literally a
    // parameter's name, `/v1/devices/:id`, matches as both), and a second pass would take another of the key's
    // requests and claim its Idempotency-Key again (409 to itself). The role check still holds for this route.
    const permit = (role: Role) => {
      if (!allowed.includes(role))
        throw new SimrootError("auth.forbidden", "forbidden", `${/^[aeiou]/.test(role) ? "An" : "A"} ${role} key may not do this`);
    };
    const authenticated = c.get("principal");
    if (authenticated) {
      permit(authenticated.role);
      return next();
    }
    const token = bearerToken(c.req.header("authorization"));
    const principal = await authenticate(c.get("ports"), token);
    permit(principal.role);
    // Authenticated, and before any work: each key within its tenant's rate limit, and the tenant's keys of its kind within
    // the deployment's tenant-wide limit (RateLimit headers on every answer).
    const rate = await takeKeyRequest(c.get("ports"), principal.tenantId, principal.keyId, principal.role);
    for (const [name, value] of Object.entries(rateLimitHeaders(rate))) c.header(name, value);
    if (!admitted(rate)) throw rateLimited(rate);
    c.set("principal", principal);
    c.set("ctx", {
      tenantId: principal.tenantId,
      actor: `key:${principal.keyId}`,
      requestId: c.get("requestId"),
      role: principal.role,
      ...(principal.secretHash ? { keySecretHash: principal.secretHash } : {}),
    });
    // Only now, authenticated, may a request's body be read (to fingerprint it): per credential.
    return idempotent(c, `key:${principal.keyId}`, token, next);
  });

/**
 * Whether the request's key still authenticates as it did when the request began: not revoked, rotated or bound to
 * another view since (through the key cache, so another instance's change shows within its 1 s). A response that waited
 * for news (a long poll, a stream) asks before it tells the key anything: a key revoked while its stream was open kept
 * receiving the tenant's changes, signed deltas with devices' identifiers, until the stream's wait ended (review 109).
 */
export async function stillAuthenticated(c: Context<AppEnv>): Promise<boolean> {
  const principal = c.get("principal");
  try {
    const now = await authenticate(c.get("ports"), bearerToken(c.req.header("authorization")));
    return (
      now.keyId === principal.keyId &&
      now.tenantId === principal.tenantId &&
      now.role === principal.role &&
      now.selector === principal.selector
    );
  } catch (error) {
    if (isSimrootError(error) && error.code === "auth.invalid_key") return false;
    throw error;
  }
}

/** The token of an `Authorization: Bearer` header; the scheme is case-insensitive (RFC 9110 11.1). */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer +([\x21-\x7e]+) *$/i.exec(header ?? "")?.[1];
}

export const readers: Role[] = ["admin", "operator", "viewer"];
export const writers: Role[] = ["admin", "operator"];
