/**
 * The HTTP API in AWS is five functions, one per route group, reached by the route keys of the
 * platform definition (`routes`); locally it is one app with every group. These tests route each
 * of the whole app's routes the way API Gateway selects an HTTP API route and fail when it would
 * reach a function that does not serve it (a 404 in AWS that no local test would see), or when a
 * function serves a route no request can reach.
 */
import { describe, expect, it } from "vitest";
import { createApp } from "../packages/api/src/app.ts";
import { documentOnlyOptions } from "../packages/api/src/contracts.ts";
import { apiFunctionFor as gatewayTarget } from "../packages/core/src/platform/api-routes.ts";
import { apiFunctionNames, functions, type ApiFunctionName } from "../packages/core/src/platform/functions.ts";

interface Route {
  readonly method: string;
  readonly path: string;
}

const routesOf = (app: { routes: readonly Route[] }): Route[] => {
  const seen = new Set<string>();
  return app.routes
    .filter((route) => route.method !== "ALL")
    .map((route) => ({ method: route.method, path: route.path }))
    .filter((route) => !seen.has(`${route.method} ${route.path}`) && seen.add(`${route.method} ${route.path}`));
};

/** A path a request would use for a Hono route pattern (`:id`, `:script{regex}`). */
const concrete = (path: string) =>
  path.replace(/:script\{[^}]*\}\}?/g, "scalar-api-reference-1.2.3.js").replace(/:[A-Za-z]+(\{[^}]*\})?/g, "x_1");

const entryApps = Object.fromEntries(
  await Promise.all(
    apiFunctionNames.map(async (name) => [name, (await import(`../functions/src/${functions[name].handler}`)).app] as const),
  ),
) as Record<ApiFunctionName, { routes: Route[] }>;

describe("the HTTP API's functions", () => {
  const whole = routesOf(createApp(documentOnlyOptions));

  it("route every request of the whole app to the function that serves it", () => {
    const misrouted = whole
      .map((route) => ({ ...route, to: gatewayTarget(route.method, concrete(route.path)) }))
      .filter((route) => !routesOf(entryApps[route.to]).some((served) => served.method === route.method && served.path === route.path))
      .map((route) => `${route.method} ${route.path} -> ${route.to}`);
    expect(misrouted).toEqual([]);
    expect(whole.length).toBeGreaterThan(70);
  });

  it("serve no route a request cannot reach, and together serve every route of the whole app", () => {
    const unreachable: string[] = [];
    const served = new Set<string>();
    for (const name of apiFunctionNames) {
      for (const route of routesOf(entryApps[name])) {
        served.add(`${route.method} ${route.path}`);
        if (gatewayTarget(route.method, concrete(route.path)) !== name) unreachable.push(`${route.method} ${route.path} in ${name}`);
      }
    }
    expect(unreachable).toEqual([]);
    expect(whole.map((route) => `${route.method} ${route.path}`).filter((route) => !served.has(route))).toEqual([]);
  });

  it("select routes as API Gateway does", () => {
    // A path without a greedy variable first; then the longest greedy prefix; then $default. (No route key names a
    // method since the traffic preview moved to the policy function: every key is ANY.)
    expect(gatewayTarget("POST", "/v1/policies/preview")).toBe("apiPolicy");
    expect(gatewayTarget("GET", "/v1/traffic")).toBe("apiPolicy");
    expect(gatewayTarget("GET", "/v1/webhooks/wh_1")).toBe("apiAutomation");
    expect(gatewayTarget("POST", "/v1/decisions/evaluate")).toBe("apiPolicy");
    expect(gatewayTarget("GET", "/v1/policies")).toBe("apiPolicy");
    expect(gatewayTarget("GET", "/v1/feed")).toBe("apiEnforcement");
    expect(gatewayTarget("GET", "/v1/feed/keys")).toBe("apiEnforcement");
    expect(gatewayTarget("POST", "/v1/ingest/src_1")).toBe("apiIngest");
    expect(gatewayTarget("GET", "/v1/ingest")).toBe("api");
    expect(gatewayTarget("GET", "/v1/devices/dev_1")).toBe("api");
  });
});
