/**
 * The typed simroot client: openapi-fetch over the generated `paths`, with the API key, a
 * request id per call, problem+json errors thrown as `SimrootApiError`, cursor pagination,
 * idempotent POSTs, and retries of the requests safe to repeat.
 */
import createFetchClient, { type Client, type ClientPathsWithMethod, type FetchResponse, type MaybeOptionalInit } from "openapi-fetch";
import type { paths } from "./openapi.d.ts";
import { SimrootApiError } from "./problem.ts";

export interface ClientOptions {
  /** Where the API lives, e.g. `https://api.example.com` or `http://127.0.0.1:3000`. */
  readonly baseUrl: string;
  /** A tenant API key (`sr_key_<ulid>_<secret>`); omit for unauthenticated routes such as `/health`. */
  readonly apiKey?: string;
  /** A fetch to use instead of `globalThis.fetch` (tests, proxies, retries). */
  readonly fetch?: (request: Request) => Promise<Response>;
  /** Makes the `X-Request-Id` of each call; defaults to a random UUID. */
  readonly requestId?: () => string;
  /** How requests safe to repeat are sent again (see `RetryOptions`). */
  readonly retry?: RetryOptions;
}

/**
 * A GET (or HEAD), and a POST carrying an `Idempotency-Key`, are sent again when the network fails or the server
 * answers 429, 502, 503 or 504 (an idempotent POST also on 409 `request.in_progress`): after the answer's
 * `Retry-After` (seconds or an HTTP date), else after a backoff of 100 ms doubling, drawn with full jitter. Nothing
 * else is sent twice: a POST without a key may have acted, and the API does not document PUT, PATCH or DELETE as
 * idempotent (one that went through answers its repeat 412 or 404). A call's `signal` stops the wait too.
 */
export interface RetryOptions {
  /** Attempts after the first (default 3; 0 sends every request once). */
  readonly retries?: number;
  /** The longest wait between two attempts, in seconds (default 20); a `Retry-After` asking longer is thrown at once. */
  readonly maxWaitSeconds?: number;
  /** No attempt starts later than this many seconds after the first (default 60); the last answer is thrown instead. */
  readonly deadlineSeconds?: number;
}

type Media = `${string}/${string}`;
export type HttpClient = Client<paths, Media>;
export type HttpMethod = "get" | "put" | "post" | "delete" | "patch";
export type PathsWith<M extends HttpMethod> = ClientPathsWithMethod<HttpClient, M>;

/** No keys: the empty object type (`{}`, which as a type would also admit every non-nullish value). */
type NoKeys = Record<never, never>;
type RequiredKeysOf<T> = { [K in keyof T]-?: NoKeys extends Pick<T, K> ? never : K }[keyof T];
/** The init argument is optional exactly when nothing in it is required (as in openapi-fetch). */
type InitArgs<Init> = RequiredKeysOf<Init> extends never ? [init?: Init] : [init: Init];
type Operation<P, M extends HttpMethod> = P extends keyof paths ? (M extends keyof paths[P] ? paths[P][M] : never) : never;

/** What a successful call returns: the 2xx body of the operation, per `parseAs`. */
export type ResponseData<P, M extends HttpMethod, Init = NoKeys> =
  Operation<P, M> extends infer Op extends Record<string | number, unknown> ? NonNullable<FetchResponse<Op, Init, Media>["data"]> : never;

/** Calls a route and returns its 2xx body, or throws `SimrootApiError`. */
export type Call<M extends HttpMethod, Extra = NoKeys> = <P extends PathsWith<M>, Init extends MaybeOptionalInit<paths[P], M>>(
  path: P,
  ...init: InitArgs<Init & Extra>
) => Promise<ResponseData<P, M, Init>>;

/** A GET that also answers the resource's `ETag`, for a later `If-Match`. */
export type GetWithEtag = <P extends PathsWith<"get">, Init extends MaybeOptionalInit<paths[P], "get">>(
  path: P,
  ...init: InitArgs<Init>
) => Promise<{ data: ResponseData<P, "get", Init>; etag: string | undefined }>;

/** GET routes answering `{ items, next? }` pages. */
export type PagedPath = {
  [P in PathsWith<"get">]: ResponseData<P, "get"> extends { items: readonly unknown[]; next?: string } ? P : never;
}[PathsWith<"get">];
type Parameters_<P extends PagedPath> = Operation<P, "get"> extends { parameters: infer Params } ? Params : never;
export type PageQuery<P extends PagedPath> = Omit<NonNullable<Parameters_<P> extends { query?: infer Q } ? Q : never>, "cursor">;
export type PagePathParams<P extends PagedPath> = Parameters_<P> extends { path: infer Params } ? Params : undefined;
export type PageItem<P extends PagedPath> = ResponseData<P, "get"> extends { items: readonly (infer Item)[] } ? Item : never;

/** For routes newer than the generated types: untyped, same key, request id and errors. */
export interface RawInit {
  /** Values for `{name}` segments of the path. */
  readonly path?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** Aborts the request, and the wait before its next attempt. */
  readonly signal?: AbortSignal;
}

export interface SimrootClient {
  /** The underlying openapi-fetch client (answers `{ data, error, response }`, never throws on status). */
  readonly http: HttpClient;
  readonly get: Call<"get">;
  readonly post: Call<"post">;
  readonly put: Call<"put">;
  readonly patch: Call<"patch">;
  readonly delete: Call<"delete">;
  readonly getWithEtag: GetWithEtag;
  /**
   * A POST that is safe to repeat: sends `Idempotency-Key` (given, or a new UUID) and retries
   * with the same key as `RetryOptions` says (`retries` here overrides the client's): when the
   * network fails, the server answers 429, 502, 503 or 504, or the first attempt is still under
   * way on the server (409 `request.in_progress`).
   */
  readonly idempotentPost: Call<"post", { idempotencyKey?: string; retries?: number }>;
  /** Every item of a paginated list, following `next` cursors page by page. */
  paginate<P extends PagedPath>(path: P, query?: PageQuery<P>, pathParams?: PagePathParams<P>): AsyncIterableIterator<PageItem<P>>;
  /** A route the generated types do not know yet; answers the parsed JSON (or text), throws `SimrootApiError`. */
  request(method: Uppercase<HttpMethod>, path: string, init?: RawInit): Promise<unknown>;
  /** Like `request`, but answers the successful `Response` itself (to stream JSON Lines, read headers). */
  fetchRaw(method: Uppercase<HttpMethod>, path: string, init?: RawInit): Promise<Response>;
}

/** Answers that say the request was not done, or may not have been, and may be sent again. */
const retryable = new Set([429, 502, 503, 504]);
/** Methods a repeat cannot change the outcome of (RFC 9110 9.2.2). */
const safeMethods = new Set(["GET", "HEAD"]);
/** The first backoff (full jitter draws each wait between 0 and it, doubled per attempt). */
const baseDelayMs = 100;
const defaultRetry = { retries: 3, maxWaitSeconds: 20, deadlineSeconds: 60 } as const;

/** An answer a request safe to repeat is sent again for: throttled, the gateway's or a dependency's failure, or its first attempt under way. */
const retriedAnswer = (method: string, { response, error }: Outcome) =>
  retryable.has(response.status) ||
  (method === "POST" && response.status === 409 && (error as { title?: unknown } | undefined)?.title === "request.in_progress");

/** `Retry-After` (RFC 9110 10.2.3: seconds, or an HTTP date) in milliseconds; 0 when absent or unreadable. */
function retryAfterMs(value: string | null): number {
  if (value === null) return 0;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? 0 : Math.max(0, at - Date.now());
}

/** Whether openapi-fetch's init sends an `Idempotency-Key` (as `headers` or as the operation's header parameter). */
function carriesIdempotencyKey(init: Record<string, unknown> | undefined): boolean {
  const params = init?.params as { header?: unknown } | undefined;
  return [init?.headers, params?.header].some((headers) => {
    if (headers instanceof Headers) return headers.has("idempotency-key");
    const entries = Array.isArray(headers) ? headers : Object.entries((headers ?? {}) as Record<string, unknown>);
    return entries.some(([name, value]) => String(name).toLowerCase() === "idempotency-key" && value != null);
  });
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Sends a request (`attempt`) and, when it is safe to repeat, sends it again as `RetryOptions` says; answers the last
 * outcome (its error, when the network failed every time, is thrown).
 */
async function withRetries(
  method: string,
  init: Record<string, unknown> | undefined,
  options: Required<RetryOptions>,
  attempt: () => Promise<Outcome>,
): Promise<Outcome> {
  const repeatable = safeMethods.has(method) || (method === "POST" && carriesIdempotencyKey(init));
  const retries = repeatable ? options.retries : 0;
  const signal = init?.signal instanceof AbortSignal ? init.signal : undefined;
  const maxWaitMs = options.maxWaitSeconds * 1000;
  const deadline = Date.now() + options.deadlineSeconds * 1000;
  for (let tried = 0; ; tried++) {
    let last: { outcome: Outcome } | { error: unknown };
    let asked = 0;
    try {
      last = { outcome: await attempt() };
      if (!retriedAnswer(method, last.outcome)) return last.outcome;
      asked = retryAfterMs(last.outcome.response.headers.get("retry-after"));
    } catch (error) {
      // A network failure (fetch rejects with a TypeError); not the caller's abort.
      if (signal?.aborted) throw error;
      last = { error };
    }
    // Review 127: the backoff stops doubling at the longest wait allowed (it was 204.8 s at the 12th try).
    const wait = Math.max(asked, Math.random() * Math.min(maxWaitMs, baseDelayMs * 2 ** tried));
    if (tried >= retries || asked > maxWaitMs || Date.now() + wait > deadline) {
      if ("error" in last) throw last.error;
      return last.outcome;
    }
    await sleep(wait, signal);
  }
}
type Outcome = { data?: unknown; error?: unknown; response: Response };

async function unwrap(pending: Promise<Outcome>): Promise<unknown> {
  const { data, error, response } = await pending;
  if (!response.ok) throw SimrootApiError.from(response, error);
  return data;
}

export function createClient(options: ClientOptions): SimrootClient {
  const baseUrl = withScheme(options.baseUrl).replace(/\/+$/, "");
  const nextRequestId = options.requestId ?? (() => crypto.randomUUID());
  const retry = { ...defaultRetry, ...options.retry };
  const http = createFetchClient<paths, Media>({
    baseUrl,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    headers: options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {},
  });
  http.use({
    onRequest: ({ request }) => {
      if (!request.headers.has("x-request-id")) request.headers.set("x-request-id", nextRequestId());
      return request;
    },
  });

  // openapi-fetch checks the arguments' types; these untyped views only forward them, retrying what is safe to repeat.
  type Forward = (path: string, init?: Record<string, unknown>) => Promise<Outcome>;
  const forward =
    (method: "GET" | "PUT" | "POST" | "PATCH" | "DELETE", retries = retry.retries): Forward =>
    (path, init) =>
      withRetries(method, init, { ...retry, retries }, () => (http[method] as unknown as Forward)(path, init));
  const call = <M extends HttpMethod>(method: Uppercase<M>) => {
    const send = forward(method);
    return ((path: string, init?: Record<string, unknown>) => unwrap(send(path, init))) as unknown as Call<M>;
  };

  const getWithEtag = (async (path: string, init?: Record<string, unknown>) => {
    const outcome = await forward("GET")(path, init);
    return { data: await unwrap(Promise.resolve(outcome)), etag: outcome.response.headers.get("etag") ?? undefined };
  }) as unknown as GetWithEtag;

  const idempotentPost = (async (path: string, init: Record<string, unknown> = {}) => {
    const {
      idempotencyKey = crypto.randomUUID(),
      retries = retry.retries,
      headers,
      ...rest
    } = init as {
      idempotencyKey?: string;
      retries?: number;
      headers?: Record<string, string>;
    };
    // Review 124: a 503 was retried at once, whatever its Retry-After, and the first attempt still under way (after a
    // dropped connection, the case this call exists for) was thrown as a conflict.
    return unwrap(forward("POST", retries)(path, { ...rest, headers: { ...headers, "idempotency-key": idempotencyKey } }));
  }) as unknown as SimrootClient["idempotentPost"];

  async function* paginate<P extends PagedPath>(
    path: P,
    query?: PageQuery<P>,
    pathParams?: PagePathParams<P>,
  ): AsyncIterableIterator<PageItem<P>> {
    let cursor: string | undefined;
    do {
      const page = (await unwrap(
        forward("GET")(path, {
          params: { query: { ...query, ...(cursor ? { cursor } : {}) }, ...(pathParams ? { path: pathParams } : {}) },
        }),
      )) as { items: PageItem<P>[]; next?: string };
      yield* page.items;
      cursor = page.next;
    } while (cursor);
  }

  async function fetchRaw(method: Uppercase<HttpMethod>, path: string, init: RawInit = {}): Promise<Response> {
    const forwarded = {
      params: { path: init.path, query: init.query },
      headers: init.headers,
      ...(init.body === undefined ? {} : { body: init.body }),
      ...(init.signal ? { signal: init.signal } : {}),
      parseAs: "stream",
    };
    const send = http.request as unknown as (method: string, path: string, init: object) => Promise<Outcome>;
    const outcome = await withRetries(method, forwarded, retry, () => send(method.toLowerCase(), path, forwarded));
    if (!outcome.response.ok) throw SimrootApiError.from(outcome.response, outcome.error);
    return outcome.response;
  }

  async function request(method: Uppercase<HttpMethod>, path: string, init?: RawInit): Promise<unknown> {
    const response = await fetchRaw(method, path, init);
    const text = await response.text();
    if (!text) return undefined;
    return /[/+]json\b/.test(response.headers.get("content-type") ?? "") ? JSON.parse(text) : text;
  }

  return {
    http,
    get: call("GET"),
    post: call("POST"),
    put: call("PUT"),
    patch: call("PATCH"),
    delete: call("DELETE"),
    getWithEtag,
    idempotentPost,
    paginate,
    request,
    fetchRaw,
  };
}

/**
 * `localhost:3000` or `api.example.com` as a base URL: http for loopback hosts (`localhost`, an IPv4 address in
 * 127.0.0.0/8, `[::1]`), https otherwise (review 124: `127.example.com` and every bracketed IPv6 address were taken
 * for loopback, and the API key went to them in cleartext).
 */
export function withScheme(baseUrl: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(baseUrl)) return baseUrl;
  // The host as the URL parser reads it (review 127: `127.1` and `localhost.` are loopback; a user name before `@` is not
  // the host).
  let host: string;
  try {
    host = new URL(`http://${baseUrl}`).hostname.toLowerCase();
  } catch {
    return `https://${baseUrl}`;
  }
  const loopback = host === "localhost" || host === "localhost." || /^127\.\d+\.\d+\.\d+$/.test(host) || host === "[::1]";
  return `${loopback ? "http" : "https"}://${baseUrl}`;
}
