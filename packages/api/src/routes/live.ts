/**
 * Live changes for the console, as server-sent events: each event is one batch of the
 * tenant's committed changes (`id` is the feed version, the data names what changed), taken
 * from the same incremental feed enforcement points poll. A stream lasts at most `wait`
 * seconds, then ends; the client reconnects with `Last-Event-ID` and misses nothing (a
 * version too old for the retained deltas answers one `reset` event: reload everything).
 */
import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import { feedDeltas, headVersion, isSimrootError, timeouts } from "@simroot/core";
import { streamSSE } from "hono/streaming";
import type { AppEnv, AppOptions } from "../env.ts";
import { readers, requireRole, stillAuthenticated } from "../middleware.ts";
import { errorResponses } from "../openapi.ts";

const heartbeatMs = 10_000;

const live = createRoute({
  method: "get",
  path: "/v1/live",
  tags: ["audit"],
  summary: "The tenant's changes as they commit (server-sent events), for consoles and dashboards",
  description:
    "Events: `change` (id = the feed version; data `{version, changes: [{kind, key}]}`) and `reset` (the version you resumed from " +
    "is older than the retained changes: reload). Send `Last-Event-ID` (or `since`) to resume without a gap.",
  middleware: [requireRole(...readers)] as const,
  request: {
    query: z.object({
      since: z.coerce.number().int().nonnegative().optional().meta({ description: "resume after this version (default: now)" }),
      wait: z.coerce
        .number()
        .int()
        .min(1)
        .max(timeouts.feedWaitSeconds)
        .default(timeouts.feedWaitSeconds)
        .meta({
          description:
            `seconds before the stream ends (reconnect then), at most ${timeouts.feedWaitSeconds} so it ends inside the gateway's 30 s. ` +
            "Behind a gateway that buffers responses (API Gateway in AWS), the stream ends after its first change instead: reconnect with Last-Event-ID",
        }),
    }),
  },
  responses: {
    200: { description: "An event stream", content: { "text/event-stream": { schema: z.string() } } },
    ...errorResponses(400, 401, 403),
  },
});

export function liveRoutes(options: AppOptions) {
  return new OpenAPIHono<AppEnv>().openapi(live, async (c) => {
    const query = c.req.valid("query");
    const { ports, ctx } = c.var;
    const resumed = Number(c.req.header("last-event-id"));
    const resumable = c.req.header("last-event-id") !== undefined && Number.isSafeInteger(resumed) && resumed >= 0;
    let since = query.since ?? (resumable ? resumed : await headVersion(ports, ctx.tenantId));
    const signer = await options.feedSigner();
    const deadline = Date.now() + query.wait * 1000;
    return streamSSE(c, async (out) => {
      const aborted = new AbortController();
      out.onAbort(() => aborted.abort());
      await out.writeSSE({ event: "ready", id: String(since), data: JSON.stringify({ version: since }) });
      while (!aborted.signal.aborted && Date.now() < deadline) {
        const waitMs = Math.min(heartbeatMs, deadline - Date.now());
        try {
          const answer = await feedDeltas(ports, signer, ctx.tenantId, { since, limit: 500, waitMs, signal: aborted.signal });
          // A key revoked or rotated meanwhile is told nothing more: the stream ends (review 109).
          if (!(await stillAuthenticated(c))) return;
          if (answer.kind !== "response") continue;
          const { entries, signed } = answer.response;
          const version = signed.head.version;
          if (version <= since) {
            await out.write(": heartbeat\n\n");
            continue;
          }
          since = version;
          const changes = entries.map((entry) => ({ kind: entry.kind, key: entry.key }));
          await out.writeSSE({ event: "change", id: String(version), data: JSON.stringify({ version, changes }) });
          // A gateway that buffers the response until it ends (API Gateway) would hold this change until the wait is over.
          if (!options.streamFeed) break;
        } catch (error) {
          if (isSimrootError(error) && error.code === "feed.snapshot_required") {
            if (!(await stillAuthenticated(c))) return;
            since = await headVersion(ports, ctx.tenantId);
            await out.writeSSE({ event: "reset", id: String(since), data: JSON.stringify({ version: since }) });
            if (!options.streamFeed) break;
          } else throw error;
        }
      }
    }) as never;
  });
}
