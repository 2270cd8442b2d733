/**
 * The HTTP API: five functions, one per route group (api `groups/`), each reached by the route
 * keys of its `routes` in the platform definition (`$default` to the management API), with its
 * own permissions, timeout and bundling from there.
 * The gateway's integration limit (30 s) is longer than the function's timeout (29 s), which is
 * longer than the feed's longest long poll (20 s): see `timeouts` in core.
 */
import type { Resource } from "sst";
import type { Expect } from "./database";
import { consumerArns, consumerFunctions } from "./bus";
import { apiFunctionNames, functions } from "../packages/core/src/platform/functions";
import { functionArgs } from "./functions";
import { stage } from "./stage";

export const api = new sst.aws.ApiGatewayV2("Api", {
  accessLog: { retention: stage.logRetention },
  // No CORS: keys are bearer tokens and the console is same-origin; SST's default approves any origin's preflight.
  cors: false,
  transform: {
    stage: (args) => {
      // Throttling for the whole API (per-tenant limits are the app's own, in front of the store).
      args.defaultRouteSettings = {
        ...(args.defaultRouteSettings as object | undefined),
        throttlingRateLimit: stage.throttle.rateLimit,
        throttlingBurstLimit: stage.throttle.burstLimit,
      };
    },
  },
});

for (const name of apiFunctionNames) {
  const definition = functions[name];
  // A redrive (`POST /v1/bus/dead-letters/{id}/redrive`) invokes the rule's consumer: only the function serving it may invoke those.
  const args = definition.invokesConsumers
    ? (() => {
        const withConsumers = functionArgs(name, { consumerArns });
        return { ...withConsumers, environment: { ...withConsumers.environment, SIMROOT_CONSUMER_FUNCTIONS: consumerFunctions } };
      })()
    : functionArgs(name);
  // One function per group; each route key of the group reaches it.
  const handler = new sst.aws.Function(`Api${name[0]!.toUpperCase()}${name.slice(1)}`, args);
  for (const route of definition.routes) api.route(route, handler.arn);
}

/** Fails to typecheck when the committed `sst-env.d.ts` lacks the API. */
export type ApiDeclaredInSstEnv = Expect<Resource["Api"] extends { url: string; type: "sst.aws.ApiGatewayV2" } ? true : false>;
