import { fieldIssues, SimrootError } from "@simroot/core";
import type { Hono } from "hono";
import type { AppEnv, AppOptions } from "./env.ts";
import { jsonBodies, limitBody, tooLarge } from "./body-limit.ts";
import { answerHeaders, limitFailedAuthentications, requestId } from "./middleware.ts";
import { isMissingIfMatch, preconditionRequired } from "./preconditions.ts";
import { unmatched } from "./methods.ts";
import { OpenAPIHono } from "./route-table.ts";
import { securitySchemes } from "./openapi-security.ts";
import { problemResponse } from "./problem.ts";

/** Routes of one part of the API, given the app's options. */
export type RouteGroup = (options: AppOptions) => Hono<AppEnv>;

/**
 * An HTTP app serving the given route groups, with what every route shares: request ids and
 * authentication, body limits, validation answered as problem+json, 404 and 405. The whole API
 * (`createApp`) serves every group; each API function in AWS serves its own (core's platform
 * definition routes paths to functions), so no function carries the code of every route.
 */
export function composeApp(options: AppOptions, groups: readonly RouteGroup[]) {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (result.success) return;
      if (
        isMissingIfMatch(
          result.target,
          result.error.issues.map((issue) => String(issue.path[0])),
        )
      )
        throw preconditionRequired();
      throw new SimrootError("request.invalid", "input", "The request does not match the API", {
        issues: fieldIssues(result.error.issues),
      });
    },
  });
  app.use(answerHeaders, requestId(options), limitFailedAuthentications(options));
  app.use(limitBody, jsonBodies);
  app.onError((error, c) => problemResponse(c, c.get("bodyTooLarge") ? tooLarge() : error));
  app.notFound((c) => problemResponse(c, unmatched(c, app.routes)));
  for (const group of groups) app.route("/", group(options));
  for (const [name, scheme] of Object.entries(securitySchemes)) app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  return app;
}
