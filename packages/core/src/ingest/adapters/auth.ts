/** What the adapters share to authenticate a webhook: constant-time secret checks and the refusal they throw. */
import { createHash, timingSafeEqual } from "node:crypto";
import { SimrootError } from "../../error.ts";
import type { IngestRequest, SourceCredentials } from "../adapter.ts";

/** Constant-time comparison of two secrets of any length (their SHA-256 digests are compared). */
export function sameSecret(presented: string, expected: string): boolean {
  const digest = (secret: string) => createHash("sha256").update(secret).digest();
  return timingSafeEqual(digest(presented), digest(expected));
}

/** The error of a request that is not authentic: kind `auth`, code `ingest.unauthenticated`. */
export function unauthenticated(message: string): SimrootError {
  return new SimrootError("ingest.unauthenticated", "auth", message);
}

/** `Authorization: Bearer <token>` against the source's `bearerToken`; a source without one refuses everything. */
export function authenticateBearerToken(request: IngestRequest, credentials: SourceCredentials): void {
  const presented = /^Bearer\s+(\S+)\s*$/i.exec(request.headers["authorization"] ?? "")?.[1];
  const expected = credentials.bearerToken;
  if (!expected || presented === undefined || !sameSecret(presented, expected)) {
    throw unauthenticated("Missing or invalid bearer token");
  }
}
