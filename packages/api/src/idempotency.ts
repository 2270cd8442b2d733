import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from "node:crypto";
import type { Context, Next } from "hono";
import { claimIdempotencyKey, completeIdempotencyKey, releaseIdempotencyKey, SimrootError, type StoredResponse } from "@simroot/core";
import type { AppEnv } from "./env.ts";

const keyPattern = /^[\x21-\x7e]{1,255}$/;
const replayedHeaders = ["content-type", "location", "etag"];
const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

/**
 * The key that seals a kept answer: derived from the caller's own API key (its token, which the store keeps only as a
 * hash), the scope and the Idempotency-Key. An answer may carry a secret shown once (a new API key's token, a webhook's
 * signing secret, a source's credentials, a new tenant's admin token); kept as it was, a read of the table (a backup, an
 * export) learned it for 24 h (review 55). Sealed, only a retry by the same caller opens it.
 */
const answerKey = (token: string, scope: string, key: string) =>
  createHmac("sha256", token).update(`simroot idempotent answer|${scope}|${key}`).digest();

function sealAnswer(secret: Buffer, body: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", secret, iv);
  const sealed = Buffer.concat([cipher.update(body, "utf8"), cipher.final()]);
  return ["v1", iv, sealed, cipher.getAuthTag()].map((part) => (typeof part === "string" ? part : part.toString("base64url"))).join(".");
}

function openAnswer(secret: Buffer, sealed: string): string | undefined {
  const [version, iv, body, tag] = sealed.split(".");
  if (version !== "v1" || !iv || body === undefined || !tag) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", secret, Buffer.from(iv, "base64url"));
    decipher.setAuthTag(Buffer.from(tag, "base64url"));
    return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}

/** The kept answer's body: opened (answers kept before sealing are as they were). */
function keptBody(response: StoredResponse, secret: Buffer | undefined): string | undefined {
  if (response.sealedBody === undefined) return response.body;
  return secret ? openAnswer(secret, response.sealedBody) : undefined;
}

/**
 * `Idempotency-Key` on POSTs: the first request with a key acts and its response is kept;
 * a retry with the same key and body gets that response again (`Idempotent-Replayed: true`),
 * a concurrent one 409, one with another body 422. Keys are scoped to the authenticated
 * credential (`scope`): this runs after authentication, so no body is read for a stranger.
 * Responses of 5xx, 401 and 403 are not kept, so the retry acts. The kept answer is sealed with a key the caller's
 * own token derives (`answerKey`).
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
  const ports = c.var.ports;
  const secret = token === undefined ? undefined : answerKey(token, scope, key);
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
    const body = keptBody(claim.response, secret);
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
    ...(secret ? { sealedBody: sealAnswer(secret, body) } : { body }),
  });
}
