/**
 * One function of the HTTP API: the route groups it serves (core's platform definition routes
 * their paths to it), composed with what every route shares, behind the Lambda integration.
 * The whole API runs as one app locally (`createApp`); in AWS each group is its own function, so
 * none carries the code (and the cold start) of every route.
 */
import type { AppOptions, RouteGroup } from "@simroot/api";
import { composeApp } from "@simroot/api/compose";
import { authFailureLimitFromEnv, noticeSettleMs, type FeedSigner, type Ports } from "@simroot/core";
import { lambdaHandler, sourceIp } from "./lambda-http.ts";
import { logger } from "./telemetry.ts";

export interface ApiFunctionOptions {
  readonly ports: () => Ports;
  /** Only the functions that sign (the feed, the audit trail, the live view) hold the feed key. */
  readonly feedSigner?: () => Promise<FeedSigner>;
  readonly health?: AppOptions["health"];
}

const signsNothing = async (): Promise<FeedSigner> => {
  throw new Error("this API function holds no feed signing key: a route that signs belongs to the enforcement function");
};

export function apiFunction(groups: readonly RouteGroup[], options: ApiFunctionOptions) {
  const app = composeApp(
    {
      ports: options.ports,
      feedSigner: options.feedSigner ?? signsNothing,
      health: options.health ?? {},
      logRequests: true,
      log: logger,
      // Failed authentications per address, counted across the function's instances (the gateway throttles only the stage).
      authFailures: authFailureLimitFromEnv(),
      clientAddress: (c) => sourceIp(c.env),
    },
    groups,
  );
  // The feed notices of the request's commits are sent before the function returns (at most `noticeSettleMs`).
  const settle = async () => options.ports().feedNotifier?.settled?.(noticeSettleMs);
  return { app, handler: lambdaHandler(app.fetch, settle) };
}
