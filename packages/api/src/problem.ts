import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import {
  dependencyUnavailable,
  invalidCursor,
  isInvalidStartKey,
  isSimrootError,
  SimrootError,
  timeouts,
  type ErrorKind,
} from "@simroot/core";
import { consoleLog, type AppLog } from "./env.ts";

const statusByKind: Record<ErrorKind, 400 | 401 | 403 | 404 | 409 | 412 | 500 | 503> = {
  input: 400,
  auth: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  internal: 500,
};

/** A stable problem type per error code (RFC 9457 `type`). */
export const problemType = (code: string) => `urn:simroot:problem:${code}`;

/** The one error mapper of the HTTP transport: every error leaves as RFC 9457 problem+json. */
export function problemResponse(c: Context, error: unknown): Response {
  const known = isSimrootError(error)
    ? error
    : isInvalidStartKey(error)
      ? invalidCursor()
      : (dependencyUnavailable(error) ?? fromTransportError(error));
  const log = (c.get("log") as AppLog | undefined) ?? consoleLog;
  if (known.kind === "unavailable") {
    log.warn("dependency unavailable", {
      requestId: c.get("requestId"),
      code: known.code,
      error: String((known.cause as Error)?.message ?? known.message),
    });
  }
  if (known.kind === "internal")
    log.error("unexpected error", { requestId: c.get("requestId"), error: String((error as Error)?.stack ?? error) });
  const status = (known.detail.status as number | undefined) ?? statusByKind[known.kind];
  const body = {
    type: problemType(known.code),
    title: known.code,
    status,
    detail: known.message,
    instance: c.req.path,
    requestId: c.get("requestId"),
    ...(known.issues.length > 0 ? { errors: known.issues } : {}),
  };
  const headers = (known.detail.headers ?? {}) as Record<string, string>;
  return c.body(JSON.stringify(body), status as 400, {
    ...headers,
    "content-type": "application/problem+json",
    ...(status === 401 ? { "www-authenticate": 'Bearer realm="simroot"' } : {}),
    ...(status === 503 || typeof known.detail.retryAfter === "number"
      ? {
          "retry-after": String(
            typeof known.detail.retryAfter === "number"
              ? known.detail.retryAfter
              : (known.detail.retryAfterSeconds ?? timeouts.retryAfterSeconds),
          ),
        }
      : {}),
  });
}

/** Errors raised by Hono itself (malformed JSON, body limits) keep their status; anything else is a 500. */
function fromTransportError(error: unknown): SimrootError {
  if (error instanceof HTTPException && error.status < 500) {
    const code = error.status === 413 ? "request.too_large" : error.status === 400 ? "request.malformed" : "request.rejected";
    return new SimrootError(code, "input", error.message || "The request was rejected", { detail: { status: error.status } });
  }
  return new SimrootError("internal.unexpected", "internal", "An unexpected error occurred", { cause: error });
}
