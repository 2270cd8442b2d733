import { createHash } from "node:crypto";
import type { Context, Next } from "hono";
import { claimIdempotencyKey, completeIdempotencyKey, releaseIdempotencyKey, SimrootError } from "@simroot/core";
import type { AppEnv } from "./env.ts";

const keyPattern = /^[\x21-\x7e]{1,255}$/;
const replayedHeaders = ["content-type", "location", "etag"];
const sha256 = (text: string) => createHash("sha256").update(text).digest("base64url");

/**
 * `Idempotency-Key` on POSTs: the first request with a key acts and its response is kept;
 * a retry with the same key and body gets that response again (`Idempotent-Replayed: true`),
 * a concurrent one 409, one with another body 422. Keys are scoped to the authenticated
 * credential (`scope`): this runs after authentication, so no body is read for a stranger.
 * Responses of 5xx, 401 and 403 are not kept, so the retry acts.
 */
export async function idempotent(c: Context<AppEnv>, scope: string, next: Next): Promise<Response | undefined> {
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
    return c.body(claim.response.body, claim.response.status as 200, { ...claim.response.headers, "idempotent-replayed": "true" });
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
  await completeIdempotencyKey(ports, scope, key, fingerprint, { status, body: await c.res.clone().text(), headers });
}
