/** The console's only way to the control plane: same origin, the user's API key as a bearer token. */

const keyStorage = "simroot.apiKey";

export function apiKey(): string | null {
  return sessionStorage.getItem(keyStorage);
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(keyStorage, key);
  else sessionStorage.removeItem(keyStorage);
}

/** An RFC 9457 problem the API answered, with the fields it named. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { title?: string; detail?: string; type?: string; errors?: { path: string; message: string }[] },
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }
}

export interface Page<T> {
  items: T[];
  next?: string;
}

export async function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const key = apiKey();
  const response = await fetch(path, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ detail: response.statusText }));
    if (response.status === 401) window.dispatchEvent(new CustomEvent("simroot:unauthorized"));
    throw new ApiError(response.status, problem);
  }
  return response;
}

export async function api<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
  const response = await request(method, path, body, headers);
  return (response.status === 204 ? undefined : await response.json()) as T;
}

/**
 * The items of a paginated list, up to `max`, and whether the list holds more (`more`: an item past `max` was read). A
 * cursor alone does not say so: a full page comes with one whether or not anything follows (review 127: exactly 500
 * parked events were shown as "500+").
 */
export async function upTo<T>(path: string, max: number, pageSize = 100): Promise<{ items: T[]; more: boolean }> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const separator = path.includes("?") ? "&" : "?";
    const page = await api<Page<T>>("GET", `${path}${separator}limit=${pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    items.push(...page.items);
    cursor = page.next;
  } while (cursor && items.length <= max);
  return { items: items.slice(0, max), more: items.length > max };
}

/** Every item of a paginated list, up to `max`. */
export async function all<T>(path: string, max = 5_000): Promise<T[]> {
  return (await upTo<T>(path, max)).items;
}
