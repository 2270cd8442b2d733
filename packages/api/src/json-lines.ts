/** Bodies of JSON Lines (exports), streamed as they are read. */
import type { Context } from "hono";
import type { AppEnv } from "./env.ts";

/**
 * A body of JSON Lines, written as `produce` reads them. A failure partway cuts the response off: the body errors, so the
 * HTTP response ends without its last chunk and the client's read fails. Hono's `stream` helper logged the error and
 * closed the body as if it were complete, answered 200, and a SIEM or an archive took a part of the trail for the whole
 * (review 92).
 */
export function jsonLines(c: Context<AppEnv>, produce: (write: (lines: string) => Promise<void>) => Promise<void>): Response {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const encoder = new TextEncoder();
  produce((lines) => writer.write(encoder.encode(lines)))
    .then(
      () => writer.close(),
      (error: unknown) => {
        c.get("log").error("export cut off", { requestId: c.get("requestId"), path: c.req.path, error: String(error) });
        return writer.abort(error);
      },
    )
    .catch(() => {
      // The client went away: nothing is left to tell.
    });
  c.header("content-type", "application/x-ndjson");
  return c.newResponse(readable);
}
