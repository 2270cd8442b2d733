/**
 * `/docs`: the interactive API reference, rendered by Scalar's standalone bundle served from
 * this app (pinned by the exact `@scalar/api-reference` version in package.json): no CDN, so
 * it works offline and never changes under us.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { SimrootError } from "@simroot/core";
import { Hono } from "./hono-app.ts";
import type { AppEnv } from "./env.ts";

/** Where the Lambda function ships Scalar's bundle (`files` of `functions.api` in core's platform definition). */
export const shippedScalarDirectory = "scalar";

/**
 * Scalar's package directory: beside the function's bundle in Lambda (node_modules is not
 * there), else from node_modules. Resolved on first use: a missing copy fails `/docs`, never the
 * whole API at start.
 */
function scalarDirectory(): string {
  const root = process.env.LAMBDA_TASK_ROOT;
  if (root) return join(root, shippedScalarDirectory);
  return dirname(dirname(createRequire(import.meta.url).resolve("@scalar/api-reference")));
}

let located: Promise<{ directory: string; version: string }> | undefined;
const scalar = () =>
  (located ??= (async () => {
    const directory = scalarDirectory();
    const { version } = JSON.parse(await readFile(join(directory, "package.json"), "utf8")) as { version: string };
    return { directory, version };
  })());

let script: Promise<Buffer> | undefined;

/** Mounts the reference; a file of its own, so that the page's CSP allows no inline script. */
const mount = 'Scalar.createApiReference("#app", { url: "/openapi.json", withDefaultFonts: false, hideClientButton: true });\n';

const page = (scriptPath: string) => `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>simroot API</title>
  </head>
  <body>
    <div id="app"></div>
    <script src="${scriptPath}"></script>
    <script src="/docs/mount.js"></script>
  </body>
</html>
`;

/**
 * The reference shares the console's origin, so a tab signed in to the console and then opened here holds its key (in
 * sessionStorage): only this server's scripts run, none inline, no site may frame the page, and no window of another
 * site that opened it or that it opens keeps a handle on it (Cross-Origin-Opener-Policy: same-origin; the API's
 * security schemes are bearer keys and signatures, so Scalar opens no OAuth popup to read back). Scalar writes its
 * styles inline (style elements and attributes), so styles may be.
 */
const securityHeaders = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
};

const javascript = "text/javascript; charset=utf-8";

export const docsRoutes = new Hono<AppEnv>()
  .get("/docs", async (c) => c.html(page(`/docs/scalar-api-reference-${(await scalar()).version}.js`), 200, securityHeaders))
  .get("/docs/mount.js", (c) => c.body(mount, 200, { "content-type": javascript, "cache-control": "no-cache", ...securityHeaders }))
  .get("/docs/:script{scalar-api-reference-[0-9.]+\\.js}", async (c) => {
    const { directory, version } = await scalar();
    if (c.req.param("script") !== `scalar-api-reference-${version}.js`) {
      throw new SimrootError("docs.not_found", "not_found", `This control plane serves Scalar ${version} only`);
    }
    script ??= readFile(join(directory, "dist", "browser", "standalone.js"));
    return c.body(new Uint8Array(await script), 200, {
      "content-type": javascript,
      "cache-control": "public, max-age=31536000, immutable",
      ...securityHeaders,
    });
  });
