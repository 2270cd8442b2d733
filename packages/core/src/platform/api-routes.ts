/**
 * Which API function a request reaches in AWS: the HTTP API's route selection over the route
 * keys of the API functions in the platform definition (`routes`). Used by the local runtime
 * (to check each request against the grants of the function that would serve it) and by
 * `test/api-routing.test.ts` (every route reaches the function that serves it).
 *
 * API Gateway takes a route key whose method (or ANY) and path match: a path without a greedy
 * variable before one with, then the most literal segments (the longest greedy prefix), then a
 * named method before ANY; `$default` when none matches. `{name}` matches one segment,
 * `{proxy+}` one or more.
 */
import { apiFunctionNames, functions, type ApiFunctionName } from "./functions.ts";

interface RouteKey {
  readonly name: ApiFunctionName;
  readonly method: string;
  readonly fixed: readonly string[];
  readonly greedy: boolean;
}

const keys: RouteKey[] = apiFunctionNames.flatMap((name) =>
  functions[name].routes
    .filter((key) => key !== "$default")
    .map((key) => {
      const [method, path] = key.split(" ") as [string, string];
      const parts = path.split("/").filter(Boolean);
      const greedy = parts.at(-1)?.endsWith("+}") ?? false;
      return { name, method, fixed: greedy ? parts.slice(0, -1) : parts, greedy };
    }),
);

const fallback = apiFunctionNames.find((name) => (functions[name].routes as readonly string[]).includes("$default"));

const outranks = (a: readonly number[], b: readonly number[]) => {
  const index = a.findIndex((value, i) => value !== b[i]);
  return index !== -1 && a[index]! > b[index]!;
};

/** Recent answers (route selection is a pure function of method and path), bounded: paths carry ids. */
const selected = new Map<string, ApiFunctionName>();
const selectedMax = 1_024;

/** The API function `method path` reaches (the local runtime asks on every request: answers are remembered). */
export function apiFunctionFor(method: string, path: string): ApiFunctionName {
  const key = `${method} ${path}`;
  const known = selected.get(key);
  if (known) return known;
  const target = select(method, path);
  if (selected.size >= selectedMax) selected.clear();
  selected.set(key, target);
  return target;
}

function select(method: string, path: string): ApiFunctionName {
  const segments = path.split("/").filter(Boolean);
  let best: { name: ApiFunctionName; rank: number[] } | undefined;
  for (const key of keys) {
    if (key.method !== "ANY" && key.method !== method) continue;
    if (key.greedy ? segments.length <= key.fixed.length : segments.length !== key.fixed.length) continue;
    if (!key.fixed.every((part, index) => part.startsWith("{") || part === segments[index])) continue;
    const rank = [key.greedy ? 0 : 1, key.fixed.filter((part) => !part.startsWith("{")).length, key.method === "ANY" ? 0 : 1];
    if (!best || outranks(rank, best.rank)) best = { name: key.name, rank };
  }
  const target = best?.name ?? fallback;
  if (!target) throw new Error(`no API route key matches ${method} ${path}`);
  return target;
}
