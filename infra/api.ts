/**
 * The HTTP API: every request (`$default`) goes to the one Hono app in `functions/src/api.ts`,
 * with the permissions, timeout and bundling of `functions.api` in the platform definition.
 * The gateway's integration limit (30 s) is longer than the function's timeout (29 s), which is
 * longer than the feed's longest long poll (20 s): see `timeouts` in core.
 */
import type { Resource } from "sst";
import type { Expect } from "./database";
import { consumerArns, consumerFunctions } from "./bus";
import { functionArgs } from "./functions";
import { stage } from "./stage";

export const api = new sst.aws.ApiGatewayV2("Api", {
  accessLog: { retention: stage.logRetention },
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

// A redrive (`POST /v1/bus/dead-letters/{id}/redrive`) invokes the rule's consumer: the API may invoke those functions, no other.
const apiArgs = functionArgs("api", { consumerArns });
api.route("$default", { ...apiArgs, environment: { ...apiArgs.environment, SIMROOT_CONSUMER_FUNCTIONS: consumerFunctions } });

/** Fails to typecheck when the committed `sst-env.d.ts` lacks the API. */
export type ApiDeclaredInSstEnv = Expect<Resource["Api"] extends { url: string; type: "sst.aws.ApiGatewayV2" } ? true : false>;
