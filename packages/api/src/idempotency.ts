import { createHash, createHmac } from "node:crypto";
import type { Context, Next } from "hono";
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  keySealer,
  releaseIdempotencyKey,
  SimrootError,
  type SecretBinding,
  type SecretSealer,
  type StoredResponse,
} from "@simroot/core";
import type { AppEnv } from "./env.ts";

const keyPattern = /^[\x21-\x7e]{1,255}$/;
const replayedHeaders = ["content-type", "location", "etag"];
const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

/**
 * The sealer of a kept answer (core's `keySealer`, AES-256-GCM): its key derived from the caller's own API key (its
 * token, which the store keeps only as a hash), the scope and the Idempotency-Key. An answer may carry a secret shown
 * once (a new API key's token, a webhook's signing secret, a source's credentials, a new tenant's admin token); kept as
 * it was, a read of the table (a backup, an export) learned it for 24 h (review 55). Sealed, only a retry by the same
 * caller opens it.
 */
const answerSealer = (token: string, scope: string, key: string) =>
  keySealer(createHmac("sha256", token).update(`simroot idempotent answer|${scope}|${key}`).digest());

/** The kept answer's body: opened (answers kept before sealing are as they were); undefined when it does not open. */
async function keptBody(response: StoredResponse, sealer: SecretSealer | undefined, binding: SecretBinding) {
  if (response.sealedBody === undefined) return response.body;
  return sealer?.open(response.sealedBody, binding).catch(() => undefined);
}

/**
 * `Idempotency-Key` on POSTs: the first request with a key acts and its response is kept;
 * a retry with the same key and body gets that response again (`Idempotent-Replayed: true`),
 * a concurrent one 409, one with another body 422. Keys are scoped to the authenticated
 * credential (`scope`): this runs after authentication, so no body is read for a stranger.
 * Responses of 5xx, 401 and 403 are not kept, so the retry acts. The kept answer is sealed with a key the caller's
 * own token derives (`answerSealer`).
 */
export async function idempotent(c: Context<AppEnv>, scope: string, token: string | undefined, next: Next): Promise<Response | undefined> {
  const key = c.req.header("idempotency-key");
  if (c.req.method !== "POST" || key === undefined) {
    await next();
    return;
  }
  if (!keyPattern.test(key)) {
    throw new SimrootError("request.invalid_idempotency_key", "input", "Idempotency-Key is 1 to 255 printable ASCII characters");
  }
  const fingerprint = sha256(`${c.req.method} ${c.req.path}\n${await c.req.text()}`);
  const ports = c.get("ports");
  const sealer = token === undefined ? undefined : answerSealer(token, scope, key);
  const binding = { tenantId: c.get("ctx").tenantId, record: `idempotency/${scope}/${key}` };
  const claim = await claimIdempotencyKey(ports, scope, key, fingerprint);
  if (claim.kind === "mismatch") {
    throw new SimrootError("request.idempotency_key_reused", "input", "This Idempotency-Key was used with another request", {
      detail: { status: 422 },
    });
  }
  if (claim.kind === "in_progress") {
    throw new SimrootError("request.in_progress", "conflict", "A request with this Idempotency-Key is still being processed");
  }
  if (claim.kind === "completed") {
    const body = await keptBody(claim.response, sealer, binding);
    if (body === undefined) {
      throw new SimrootError("request.idempotency_key_reused", "input", "This Idempotency-Key was used with another request", {
        detail: { status: 422 },
      });
    }
    return c.body(body, claim.response.status as 200, { ...claim.response.headers, "idempotent-replayed": "true" });
  }
  await next();
  const status = c.res.status;
  if (status >= 500 || status === 401 || status === 403) {
    await releaseIdempotencyKey(ports, scope, key);
    return;
  }
  const headers = Object.fromEntries(
    replayedHeaders.flatMap((name) => (c.res.headers.get(name) ? [[name, c.res.headers.get(name)!]] : [])),
  );
  const body = await c.res.clone().text();
  await completeIdempotencyKey(ports, scope, key, fingerprint, {
    status,
    headers,
    ...(sealer ? { sealedBody: await sealer.seal(body, binding) } : { body }),
  });
}
