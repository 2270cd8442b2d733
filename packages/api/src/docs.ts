/**
 * `/docs`: the interactive API reference, rendered by Scalar's standalone bundle served from
 * this app (pinned by the exact `@scalar/api-reference` version in package.json): no CDN, so
 * it works offline and never changes under us.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Hono } from "hono";
import type { AppEnv } from "./env.ts";

const require = createRequire(import.meta.url);
const packageDir = dirname(dirname(require.resolve("@scalar/api-reference")));
const version = (require(join(packageDir, "package.json")) as { version: string }).version;
const scriptPath = `/docs/scalar-api-reference-${version}.js`;

let script: Promise<Buffer> | undefined;

const page = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>simroot API</title>
  </head>
  <body>
    <div id="app"></div>
    <script src="${scriptPath}"></script>
    <script>Scalar.createApiReference("#app", { url: "/openapi.json", withDefaultFonts: false, hideClientButton: true });</script>
  </body>
</html>
`;

export const docsRoutes = new Hono<AppEnv>()
  .get("/docs", (c) => c.html(page))
  .get(scriptPath, async (c) => {
    script ??= readFile(join(packageDir, "dist", "browser", "standalone.js"));
    return c.body(new Uint8Array(await script), 200, {
      "content-type": "text/javascript; charset=utf-8",
      "cache-control": "public, max-age=31536000, immutable",
    });
  });
