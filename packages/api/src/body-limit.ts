import { createMiddleware } from "hono/factory";
import { SimrootError } from "@simroot/core";
import type { AppEnv } from "./env.ts";

/** Every request body, API or webhook, is limited to this many bytes (413 beyond). */
export const maxBodyBytes = 1024 * 1024;

/**
 * Methods whose requests carry no body as the server sees them (Fetch gives a GET or a HEAD none). Asking a
 * Node request for its body builds a whole Fetch `Request` (its headers, its stream): on every long poll a
 * thousand PEPs repeat after each change, that is work for nothing.
 */
const bodiless = new Set(["GET", "HEAD"]);

export const tooLarge = () =>
  new SimrootError("request.too_large", "input", `Bodies are limited to ${maxBodyBytes} bytes`, { detail: { status: 413 } });

/**
 * The size limit, before anything reads a body: a declared `Content-Length` over the limit is
 * refused at once; any other body is wrapped in a stream that fails past the limit, so whoever
 * reads it (after authentication) stops there. Unlike hono's `bodyLimit`, nothing is buffered here.
 */
export const limitBody = createMiddleware<AppEnv>(async (c, next) => {
  const raw = c.req.raw;
  if (bodiless.has(raw.method) || !raw.body) return next();
  const declared = raw.headers.get("content-length");
  if (declared !== null && !raw.headers.has("transfer-encoding") && Number(declared) > maxBodyBytes) throw tooLarge();
  let size = 0;
  const counted = raw.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        size += chunk.byteLength;
        if (size > maxBodyBytes) {
          c.set("bodyTooLarge", true);
          controller.error(tooLarge());
          return;
        }
        controller.enqueue(chunk);
      },
    }),
  );
  c.req.raw = new Request(raw, { body: counted, duplex: "half" } as RequestInit);
  await next();
});

const jsonMediaType = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * A body that is not JSON (`application/json` or any `+json` type) is refused with 415 before
 * anything reads it. Webhooks (`/v1/ingest/`) are checked against their source's format once
 * authenticated (core `ingest/ingest.ts`): its media types are the format's, unknown before.
 */
export const jsonBodies = createMiddleware<AppEnv>(async (c, next) => {
  if (bodiless.has(c.req.raw.method)) return next();
  const headers = c.req.raw.headers;
  const type = headers.get("content-type");
  const length = headers.get("content-length");
  const unlabelledBody = type === null && (headers.has("transfer-encoding") || (length !== null && length !== "0"));
  const notJson = type !== null && !jsonMediaType.test(type);
  if (c.req.raw.body !== null && (notJson || unlabelledBody) && !c.req.path.startsWith("/v1/ingest/")) {
    c.header("accept-post", "application/json");
    throw new SimrootError("request.unsupported_media_type", "input", "Send the body as JSON (Content-Type: application/json)", {
      detail: { status: 415 },
    });
  }
  await next();
});
