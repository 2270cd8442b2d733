import type { Context } from "hono";
import type { AuthFailureLimit, FeedSigner, Ports, Principal, RequestContext, Role } from "@simroot/core";

/** What every route can read from the Hono context. */
export interface AppEnv {
  Variables: {
    requestId: string;
    ports: Ports;
    principal: Principal;
    ctx: RequestContext;
    /** Set when the body ran past the size limit while something read it (answered 413). */
    bodyTooLarge: boolean;
    log: AppLog;
  };
}

/** Structured log lines (Powertools Logger in Lambda: it has this shape); by default JSON lines on stdout and stderr. */
export interface AppLog {
  info(message: string, fields: Record<string, unknown>): void;
  warn(message: string, fields: Record<string, unknown>): void;
  error(message: string, fields: Record<string, unknown>): void;
}

export const consoleLog: AppLog = {
  info: (message, fields) => console.log(JSON.stringify({ level: "INFO", message, ...fields })),
  warn: (message, fields) => console.error(JSON.stringify({ level: "WARN", message, ...fields })),
  error: (message, fields) => console.error(JSON.stringify({ level: "ERROR", message, ...fields })),
};

export type HealthCheck = () => Promise<{ status: "ok" | "down"; detail?: Record<string, unknown> }>;

export interface AppOptions {
  /** The ports to serve with (resolved per request, so Lambda builds them lazily). */
  readonly ports: () => Ports;
  /** Named component checks reported by `GET /health`. */
  readonly health: Readonly<Record<string, HealthCheck>>;
  /** Signs the policy feed's heads (a key file locally, AWS KMS in production). */
  readonly feedSigner: () => Promise<FeedSigner>;
  /** One JSON log line per request (method, path, status, duration, request id). */
  readonly logRequests?: boolean;
  /** Where log lines go (default `consoleLog`). */
  readonly log?: AppLog;
  /**
   * A long-running server (local, container): a delta poll that accepts `text/event-stream` is
   * answered as a stream of signed responses on one connection. Off behind API Gateway, which
   * buffers a response until it ends: there such a poll is answered as a long poll.
   */
  readonly streamFeed?: boolean;
  /** The built web console (`packages/console/dist` unless given). */
  readonly consoleDir?: string;
  /** Failed authentications per client address before 429 (core access/auth-failures.ts); none counted when absent. */
  readonly authFailures?: AuthFailureLimit;
  /** The client's address: the socket's in a server of its own, the gateway's `sourceIp` in Lambda. */
  readonly clientAddress?: (c: Context<AppEnv>) => string | undefined;
}

export type { Role };
