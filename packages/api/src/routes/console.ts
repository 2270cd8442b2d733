/**
 * The web console, served by the control plane itself (same origin, same API keys): the
 * pinned, pre-built assets of `packages/console` (`npm install` builds them; `dist/` holds
 * `index.html` and content-hashed files). Assets are immutable; the page is not cached, a
 * strict Content-Security-Policy allows nothing but this origin, and Cross-Origin-Opener-Policy
 * `same-origin` keeps the window (its tab holds the API key) out of reach of any other site's
 * window that opened it or that it opens: the console opens none and reads from none.
 */
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { Hono } from "../hono-app.ts";
import { compress } from "hono/compress";
import { SimrootError } from "@simroot/core";
import type { AppEnv } from "../env.ts";

const types: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".svg": "image/svg+xml",
  ".map": "application/json",
};

const securityHeaders = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
};

/** `dir` holds the built console; a missing build answers 503 saying how to build it. */
export function consoleRoutes(dir: string) {
  const files = new Map<string, Promise<Buffer | undefined>>();
  const read = (name: string) => {
    let file = files.get(name);
    if (!file) {
      file = readFile(join(dir, name)).catch(() => undefined);
      // Bounded: the build has a handful of files; unknown names are not remembered.
      file.then((found) => found === undefined && files.delete(name));
      files.set(name, file);
    }
    return file;
  };
  const page = async () => {
    const html = await read("index.html");
    if (!html) {
      throw new SimrootError("console.not_built", "unavailable", "The console is not built: run `npm run console:build`");
    }
    return new Response(new Uint8Array(html), {
      headers: { "content-type": types[".html"]!, "cache-control": "no-cache", ...securityHeaders },
    });
  };
  return new Hono<AppEnv>()
    .use("/console/*", compress())
    .get("/console", (c) => c.redirect("/console/", 308))
    .get("/console/", () => page())
    .get("/console/assets/:name", async (c) => {
      const name = normalize(c.req.param("name"));
      const type = types[extname(name)];
      const body = type && !name.includes("/") && !name.startsWith(".") ? await read(`assets/${name}`) : undefined;
      if (!body) throw new SimrootError("route.not_found", "not_found", `No console asset ${name}`);
      return new Response(new Uint8Array(body), {
        headers: { "content-type": type!, "cache-control": "public, max-age=31536000, immutable", ...securityHeaders },
      });
    });
}
