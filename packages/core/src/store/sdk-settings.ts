/**
 * What every AWS SDK client simroot builds shares: connection and request timeouts and the
 * number of attempts (platform `timeouts`), so that no dependency can hold a request longer
 * than the function has, and an error that means "the dependency is down" is recognised as such.
 */
import { SimrootError } from "../error.ts";
import { timeouts } from "../platform/limits.ts";

export interface SdkTimeouts {
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly maxAttempts?: number;
}

export function sdkClientSettings(overrides: SdkTimeouts = {}) {
  return {
    maxAttempts: overrides.maxAttempts ?? timeouts.sdkMaxAttempts,
    requestHandler: {
      connectionTimeout: overrides.connectionTimeoutMs ?? timeouts.sdkConnectionMs,
      requestTimeout: overrides.requestTimeoutMs ?? timeouts.sdkRequestMs,
      // Without it the SDK only logs a warning when the request timeout passes, and keeps waiting.
      throwOnRequestTimeout: true,
    },
  };
}

/**
 * `create()` run on first use and kept once it resolves. A rejection is not kept: the next use runs it again, so one
 * transient failure (KMS throttling, a timeout) cannot poison a warm instance until it is recycled.
 *
 * The AWS SDK clients other than DynamoDB's are built this way, their package imported on first use with a
 * destructuring `await import(...)` that the bundle keeps as it is (scripts/bundle/sdk-actions.ts reads the commands
 * from it for the function's permissions). A cold start that never signs, publishes or reads a queue does not load
 * them: each costs 10 to 40 ms of module init, which AWS bills (`npm run bench:bundle`).
 */
export function lazy<T>(create: () => Promise<T>): () => Promise<T> {
  let kept: Promise<T> | undefined;
  return () =>
    (kept ??= create().catch((error: unknown) => {
      kept = undefined;
      throw error;
    }));
}

/** SDK error names that mean the service is throttling, failing or unreachable, not that the request is wrong. */
const unavailableNames = new Set([
  "TimeoutError",
  "AbortError",
  "RequestTimeout",
  "RequestTimeoutException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "ThrottlingException",
  "ThrottledException",
  "LimitExceededException",
  "InternalServerError",
  "InternalFailure",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "KMSInternalException",
  "DependencyTimeoutException",
  "KeyUnavailableException",
]);
const unavailableCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/**
 * The `unavailable` SimrootError (503, Retry-After) for an error that says a dependency
 * (DynamoDB, EventBridge, KMS) is down, slow or throttling; `undefined` for anything else.
 */
export function dependencyUnavailable(error: unknown): SimrootError | undefined {
  const candidate = error as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; $fault?: string } | undefined;
  if (!candidate || typeof candidate !== "object") return undefined;
  const status = candidate.$metadata?.httpStatusCode;
  const down =
    unavailableNames.has(candidate.name ?? "") ||
    unavailableCodes.has(candidate.code ?? "") ||
    (candidate.$fault === "server" && (status === undefined || status >= 500));
  if (!down) return undefined;
  return new SimrootError("dependency.unavailable", "unavailable", "A service simroot depends on is not answering; try again shortly", {
    detail: { retryAfterSeconds: timeouts.retryAfterSeconds },
    cause: error,
  });
}
