import type { Context } from "hono";
import { SimrootError } from "@simroot/core";

interface RouteEntry {
  readonly method: string;
  readonly path: string;
}

/** A route path (`/v1/devices/:id`, `/v1/ingest/*`) as a matcher of request paths. */
const matcherOf = (path: string) =>
  new RegExp(
    `^${path
      .replace(/[.+?^${}()|[\]\\]/g, "\\$&")
      .replace(/\/:[^/]+/g, "/[^/]+")
      .replace(/\*/g, ".*")}/?$`,
  );

/**
 * The methods the app serves at `path` (HEAD wherever GET is), from its route table:
 * what a 405's `Allow` lists (RFC 9110 15.5.6). Middleware (`ALL`) is not a method.
 */
export function allowedMethods(routes: readonly RouteEntry[], path: string): string[] {
  const methods = new Set<string>();
  for (const route of routes) {
    if (route.method === "ALL" || !matcherOf(route.path).test(path)) continue;
    methods.add(route.method);
    if (route.method === "GET") methods.add("HEAD");
  }
  return [...methods].sort();
}

/** 404 for a path nothing serves; 405 with `Allow` for a path served with other methods. */
export function unmatched(c: Context, routes: readonly RouteEntry[]): SimrootError {
  const allowed = allowedMethods(routes, c.req.path);
  if (allowed.length === 0) return new SimrootError("route.not_found", "not_found", `No route ${c.req.method} ${c.req.path}`);
  c.header("allow", allowed.join(", "));
  return new SimrootError("route.method_not_allowed", "input", `${c.req.method} is not allowed here; use ${allowed.join(", ")}`, {
    detail: { status: 405 },
  });
}
