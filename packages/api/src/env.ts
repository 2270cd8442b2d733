import type { Ports, Principal, RequestContext, Role } from "@simroot/core";

/** What every route can read from the Hono context. */
export interface AppEnv {
  Variables: {
    requestId: string;
    ports: Ports;
    principal: Principal;
    ctx: RequestContext;
  };
}

export type HealthCheck = () => Promise<{ status: "ok" | "down"; detail?: Record<string, unknown> }>;

export interface AppOptions {
  /** The ports to serve with (resolved per request, so Lambda builds them lazily). */
  readonly ports: () => Ports;
  /** Named component checks reported by `GET /health`. */
  readonly health: Readonly<Record<string, HealthCheck>>;
  /** One JSON log line per request (method, path, status, duration, request id). */
  readonly logRequests?: boolean;
}

export type { Role };
