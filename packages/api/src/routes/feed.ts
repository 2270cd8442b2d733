import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import { streamSSE } from "hono/streaming";
import type { Context } from "hono";
import {
  unauthenticatedKey,
  advanceFeedEpoch,
  detectFlowAnomalies,
  feedDeltas,
  feedEpochSchema,
  feedResponseSchema,
  feedSnapshot,
  flowReportSchema,
  headHeader,
  isSimrootError,
  keyScope,
  selectorText,
  maxHeadLifetimeSeconds,
  outcomeValue,
  recordFlows,
  timeouts,
  type FeedScope,
  type FeedSigner,
} from "@simroot/core";
import type { AppEnv, AppOptions } from "../env.ts";
import { requireRole, stillAuthenticated } from "../middleware.ts";
import { errorResponses, json } from "../openapi.ts";

const feedReaders = requireRole("pep", "admin");

const feedQuery = z.object({
  since: z.coerce.number().int().nonnegative().optional().meta({ description: "the version the PEP holds; omit for a snapshot" }),
  cursor: z.string().max(4096).optional().meta({ description: "the next snapshot page" }),
  wait: z.coerce
    .number()
    .min(0)
    .max(timeouts.feedWaitSeconds)
    .default(0)
    .meta({
      description: `long poll: seconds to wait for a change (deltas only), at most ${timeouts.feedWaitSeconds} so the answer comes inside the gateway's 30 s`,
    }),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
  selector: selectorText.optional().meta({
    description:
      "narrow the feed to a site or segment: the devices whose labels match `key=value[,key=value]` (values URI-encoded), and their bindings. " +
      "A pep key bound to a selector (POST /v1/keys) is served its selector's view without one, and may ask only for that selector " +
      "or a narrower one (403 feed.selector_not_bound otherwise)",
  }),
});

const feed = createRoute({
  method: "get",
  path: "/v1/feed",
  tags: ["enforcement"],
  summary: "The signed, incremental feed enforcement points poll",
  description:
    "Without `since`: a snapshot, page by page (`next`). With `since`: every change after that version, answered as soon as one " +
    "lands when `wait` is given. Every response carries a head signed with Ed25519 (tenant, version, content hash, expiry of at " +
    `most ${maxHeadLifetimeSeconds} s) and, as its ETag, the version it reaches. With \`If-None-Match: "<version>"\`, an idle poll is answered 304 with the re-signed head in \`${headHeader}\`. ` +
    "410 `feed.snapshot_required` when the version is older than the retained deltas. " +
    "A delta poll with `Accept: text/event-stream`, on a control plane that streams (a long-running server; not behind " +
    "API Gateway, which answers it as a long poll), is answered as server-sent events for `wait` seconds on one connection: " +
    "`deltas` (data: a feed response continuing the previous event), `head` (data: the re-signed idle head, at least every " +
    `${maxHeadLifetimeSeconds / 2} s) and \`snapshot_required\`.`,
  middleware: feedReaders,
  request: { query: feedQuery },
  responses: {
    200: {
      description: "A snapshot page or the deltas (or, streamed, a sequence of them)",
      content: {
        "application/json": { schema: feedResponseSchema },
        "text/event-stream": { schema: z.string().meta({ description: "events `deltas`, `head`, `snapshot_required`" }) },
      },
    },
    304: { description: "Nothing changed since your version; the re-signed head is in the simroot-feed-head header" },
    ...errorResponses(400, 401, 403),
    410: { description: "Take a snapshot", content: { "application/problem+json": { schema: z.unknown() } } },
  },
});

const keys = createRoute({
  method: "get",
  path: "/v1/feed/keys",
  tags: ["enforcement"],
  summary: "The feed's public signing key, for configuring (pinning) enforcement points",
  middleware: feedReaders,
  responses: {
    200: json(
      "The keys",
      z.object({ keys: z.array(z.object({ keyId: z.string(), algorithm: z.literal("ed25519"), publicKeyPem: z.string() })) }),
    ),
    ...errorResponses(401, 403),
  },
});

const epoch = createRoute({
  method: "post",
  path: "/v1/feed/epoch",
  tags: ["enforcement"],
  summary: "Advance the tenant's feed epoch: the recovery path after a restore of the control plane or a rebuild with a new feed key",
  description:
    "Every signed head carries the epoch. A PEP refuses a version below the one it holds unless it comes as a snapshot of a " +
    "higher epoch, so after a restore (the tenant's head went back) PEPs stay closed until an admin advances the epoch; " +
    "they then take the restored state. The new epoch is the time of the advance in seconds (at least one above the previous). Audited.",
  middleware: requireRole("admin"),
  request: { body: { required: true, content: { "application/json": { schema: advanceFeedEpoch.schema } } } },
  responses: { 200: json("The new epoch", feedEpochSchema), ...errorResponses(400, 401, 403, 412) },
});

const flows = createRoute({
  method: "post",
  path: "/v1/flows",
  tags: ["enforcement"],
  summary: "Report aggregated flow records (for anomaly detection)",
  middleware: requireRole("pep"),
  request: { body: { required: true, content: { "application/json": { schema: flowReportSchema } } } },
  responses: {
    202: json(
      "Stored and judged: `flows` counts the flows kept, `anomalies` the anomaly.detected events the report caused. " +
        "A flow naming a device the tenant does not have is not kept; `unknownDevices` lists those ids (a report that keeps no flow stores nothing). " +
        "A pep key bound to a selector (POST /v1/keys) reports only on that selector's devices: a device out of it is answered and left out exactly as an unknown one, " +
        "and a flow known only by an address of such a device is kept as an address of no device (no baseline, no anomaly). " +
        "400 for a source that is neither an address nor `unknown`, or a window ending more than 300 s after the control plane's clock",
      z.object({ id: z.string(), flows: z.number().int(), unknownDevices: z.array(z.string()), anomalies: z.number().int() }),
    ),
    ...errorResponses(400, 401, 403),
  },
});

/**
 * The bytes of one event, built once per shared response (a herd woken by one commit shares the
 * response object, and so the frame): JSON holds no raw newline, so the body is one data line.
 */
const frames = new WeakMap<object, Uint8Array>();
const encoder = new TextEncoder();
function frameOf(shared: object, event: string, id: number, data: () => string): Uint8Array {
  let frame = frames.get(shared);
  if (!frame) frames.set(shared, (frame = encoder.encode(`event: ${event}\nid: ${id}\ndata: ${data()}\n\n`)));
  return frame;
}

/** A streamed feed sends the re-signed head at least this often: a PEP's head never expires while the stream is up. */
const streamHeadMs = (maxHeadLifetimeSeconds * 1000) / 2;

/**
 * The deltas after `since` as server-sent events on one connection, for `waitMs`: each
 * `deltas` event is the feed response a poll at the version reached would get (the same
 * shared, signed body), so a PEP verifies each as continuing its own state; between changes
 * a `head` event carries the re-signed idle head. One request per PEP per stream instead of
 * one per change: a thousand PEPs woken by a revocation cost a thousand writes, not a
 * thousand requests and their re-polls.
 */
function streamDeltas(
  c: Context<AppEnv>,
  signer: FeedSigner,
  query: { since: number; limit: number; waitMs: number; scope: FeedScope | undefined },
) {
  const { ports, ctx } = c.var;
  const deadline = Date.now() + query.waitMs;
  return streamSSE(
    c,
    async (out) => {
      const aborted = new AbortController();
      out.onAbort(() => aborted.abort());
      let since = query.since;
      for (let remaining = query.waitMs; remaining > 0 && !aborted.signal.aborted; remaining = deadline - Date.now()) {
        let answer: Awaited<ReturnType<typeof feedDeltas>>;
        try {
          answer = await feedDeltas(ports, signer, ctx.tenantId, {
            since,
            limit: query.limit,
            waitMs: Math.min(streamHeadMs, remaining),
            signal: aborted.signal,
            ...(query.scope ? { scope: query.scope } : {}),
          });
        } catch (error) {
          if (!isSimrootError(error) || error.code !== "feed.snapshot_required") throw error;
          await out.writeSSE({ event: "snapshot_required", data: JSON.stringify({ code: error.code, detail: error.message }) });
          return;
        }
        if (aborted.signal.aborted || answer.kind !== "response") return;
        // A key revoked, rotated or bound to another view meanwhile is sent nothing more: the stream ends, and the
        // PEP's next request is refused (review 109).
        if (!(await stillAuthenticated(c))) return;
        const { response, body } = answer;
        const version = response.signed.head.version;
        if (version > since) {
          await out.write(frameOf(response, "deltas", version, () => body ?? JSON.stringify(response)));
          since = version;
        } else await out.write(frameOf(response.signed, "head", since, () => JSON.stringify(response.signed)));
      }
    },
    // The PEP sees the stream end and polls again (and gets the error as an answer, if it persists).
    async (error) => c.get("log").error("feed stream failed", { requestId: c.get("requestId"), error: String(error) }),
  );
}

export function feedRoutes(options: AppOptions) {
  return new OpenAPIHono<AppEnv>()
    .openapi(feed, async (c) => {
      const query = c.req.valid("query");
      const signer = await options.feedSigner();
      const { ports, ctx } = c.var;
      // A pep key bound to a selector reads only its view (or a narrower one); asking for another is refused (403).
      const scope = keyScope(c.get("principal").selector, query.selector);
      if (query.since === undefined) {
        const page = await feedSnapshot(ports, signer, ctx.tenantId, query.cursor, query.limit, scope);
        c.header("etag", `"${page.signed.head.version}"`);
        return c.json(page, 200);
      }
      if (options.streamFeed && /\btext\/event-stream\b/.test(c.req.header("accept") ?? "")) {
        return streamDeltas(c, signer, { since: query.since, limit: query.limit, waitMs: query.wait * 1000, scope }) as never;
      }
      const held = /^"(\d+)"$/.exec(c.req.header("if-none-match") ?? "")?.[1];
      const answer = await feedDeltas(ports, signer, ctx.tenantId, {
        since: query.since,
        limit: query.limit,
        waitMs: query.wait * 1000,
        signal: c.req.raw.signal,
        ...(held ? { ifNoneMatch: Number(held) } : {}),
        ...(scope ? { scope } : {}),
      });
      // The poll waited up to `wait` seconds: a key revoked meanwhile is refused, not answered (review 109).
      if (!(await stillAuthenticated(c))) throw unauthenticatedKey();
      if (answer.kind === "not_modified") {
        c.header(headHeader, Buffer.from(JSON.stringify(answer.signed)).toString("base64"));
        c.header("etag", `"${answer.signed.head.version}"`);
        return c.body(null, 304) as never;
      }
      c.header("etag", `"${answer.response.signed.head.version}"`);
      if (answer.body !== undefined) return c.body(answer.body, 200, { "content-type": "application/json" }) as never;
      return c.json(answer.response, 200);
    })
    .openapi(keys, async (c) => {
      const signer = await options.feedSigner();
      return c.json({ keys: [{ keyId: signer.keyId, algorithm: "ed25519" as const, publicKeyPem: signer.publicKeyPem }] }, 200);
    })
    .openapi(epoch, async (c) => c.json(outcomeValue(await advanceFeedEpoch(c.get("ports"), c.get("ctx"), c.req.valid("json"))), 200))
    .openapi(flows, async (c) => {
      const { ports, ctx } = c.var;
      const report = c.req.valid("json");
      // A pep key bound to a selector reports only on its devices: one out of it is answered as unknown, and not kept.
      const scope = keyScope(c.get("principal").selector, undefined);
      const { report: stored, ...answer } = await recordFlows(ports, ctx, report, scope);
      const anomalies = outcomeValue(await detectFlowAnomalies(ports, ctx, { ...stored, id: answer.id }, undefined, scope));
      return c.json({ ...answer, anomalies: anomalies.length }, 202);
    });
}
