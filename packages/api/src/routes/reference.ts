import { Hono } from "../hono-app.ts";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { docsRoutes } from "../docs.ts";
import { type DocumentName, servedDocument } from "../documents.ts";
import type { AppEnv, AppOptions } from "../env.ts";
import { consoleRoutes } from "./console.ts";

/**
 * Where the console is: in Lambda, the `console` directory the api function ships (core platform/functions.ts `files`),
 * else where `npm run console:build` puts it, beside this package.
 */
const builtConsole = () =>
  process.env.LAMBDA_TASK_ROOT
    ? join(process.env.LAMBDA_TASK_ROOT, "console")
    : fileURLToPath(new URL("../../../console/dist", import.meta.url));

const document = (name: DocumentName) => async (c: { body: (text: string, status: 200, headers: Record<string, string>) => Response }) =>
  c.body(await servedDocument(name), 200, { "content-type": "application/json" });

/** What documents the API (the OpenAPI and AsyncAPI documents, the interactive reference) and the web console. */
export function referenceRoutes(options: AppOptions) {
  return (
    new Hono<AppEnv>()
      .route("/", consoleRoutes(options.consoleDir ?? builtConsole()))
      // The interactive reference: Scalar renders /openapi.json in the browser, from bundled assets.
      .route("/", docsRoutes)
      // Written by `npm run contracts` (the contract tests fail when one is stale).
      .get("/openapi.json", document("openapi.json"))
      .get("/asyncapi.json", document("asyncapi.json"))
  );
}
