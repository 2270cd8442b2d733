/**
 * The HTTP API: every request (`$default`) goes to the one Hono app in
 * `functions/src/api.ts`, linked to every table and to the bus.
 */
import type { Resource } from "sst";
import { tableKeys } from "../packages/core/src/platform/tables.ts";
import { bus, busEnvironment, runtime } from "./bus";
import { tableEnvironment, tableLinks, type Expect } from "./database";

export const api = new sst.aws.ApiGatewayV2("Api");

api.route("$default", {
  handler: "functions/src/api.handler",
  runtime,
  link: [...tableLinks(tableKeys), bus],
  environment: { ...tableEnvironment(tableKeys), ...busEnvironment },
});

/** Fails to typecheck when the committed `sst-env.d.ts` lacks the API. */
export type ApiDeclaredInSstEnv = Expect<
  Resource["Api"] extends { url: string; type: "sst.aws.ApiGatewayV2" } ? true : false
>;
