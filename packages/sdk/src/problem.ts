/** One field the API refused, as RFC 9457 `errors[]` names it (`path` is dotted, e.g. `labels.fleet`). */
export interface ProblemFieldError {
  readonly path: string;
  readonly message: string;
}

/** An RFC 9457 problem details body as the simroot API sends it. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly instance?: string;
  readonly requestId?: string;
  readonly errors?: readonly ProblemFieldError[];
}

/**
 * Every non-2xx answer, as one error: the API's problem+json fields when it sent them, else a
 * problem made from the status line and body (a proxy's HTML 502, say).
 */
export class SimrootApiError extends Error implements Problem {
  override readonly name = "SimrootApiError";
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly instance?: string;
  readonly requestId?: string;
  readonly errors: readonly ProblemFieldError[];
  /**
   * The seconds the server asked to wait before asking again (its `Retry-After`, on a 429 or a 503), when it said:
   * the call was not done, and may be made again then.
   */
  readonly retryAfterSeconds?: number;

  constructor(problem: Problem, retryAfterSeconds?: number) {
    super(`${problem.title} (${problem.status}): ${problem.detail}`);
    this.type = problem.type;
    this.title = problem.title;
    this.status = problem.status;
    this.detail = problem.detail;
    this.instance = problem.instance;
    this.requestId = problem.requestId;
    this.errors = problem.errors ?? [];
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }

  /** The problem as plain JSON (what `simroot --json` prints). */
  toJSON(): Problem {
    const { type, title, status, detail, instance, requestId, errors } = this;
    return { type, title, status, detail, instance, requestId, ...(errors.length > 0 ? { errors } : {}) };
  }

  /** Builds the error from a failed response whose body was already read (`body`: parsed JSON or text). */
  static from(response: Response, body: unknown): SimrootApiError {
    const requestId = response.headers.get("x-request-id") ?? undefined;
    const retryAfter = retryAfterSeconds(response.headers.get("retry-after"));
    if (isProblem(body)) return new SimrootApiError({ requestId, ...body, status: body.status || response.status }, retryAfter);
    const text = typeof body === "string" ? body.trim().slice(0, 500) : "";
    return new SimrootApiError(
      {
        type: "about:blank",
        title: response.statusText || `HTTP ${response.status}`,
        status: response.status,
        detail: text || `The server answered ${response.status} without problem details`,
        instance: new URL(response.url || "http://unknown/").pathname,
        requestId,
      },
      retryAfter,
    );
  }
}

/** `Retry-After` (RFC 9110 10.2.3: seconds, or an HTTP date) in whole seconds; undefined when absent or unreadable. */
function retryAfterSeconds(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

export function isProblem(value: unknown): value is Problem {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate.type === "string" && typeof candidate.title === "string" && typeof candidate.status === "number";
}

export const isSimrootApiError = (error: unknown): error is SimrootApiError => error instanceof SimrootApiError;
