import * as z from "zod";
import { createRoute, OpenAPIHono } from "../route-table.ts";
import { auditRecordSchema, listAudit, listAuditInput, moveAuditCheckpoint, SimrootError, verifyAudit } from "@simroot/core";
import type { AppEnv, AppOptions } from "../env.ts";
import { jsonLines } from "../json-lines.ts";
import { requireRole } from "../middleware.ts";
import { errorResponses, json, pageOf } from "../openapi.ts";

const auditors = requireRole("admin", "viewer");

const list = createRoute({
  method: "get",
  path: "/v1/audit",
  tags: ["audit"],
  summary: "Audit records: the whole chain in order, or one device's by time",
  middleware: auditors,
  request: { query: listAuditInput },
  responses: { 200: json("A page of audit records", pageOf(auditRecordSchema, "AuditPage")), ...errorResponses(400, 401, 403) },
});

const chainVerification = z
  .object({
    valid: z.boolean(),
    checked: z.number().int().meta({ description: "records checked by this walk" }),
    from: z
      .number()
      .int()
      .meta({ description: "the sequence the walk started after: 0 for the whole chain, else the signed checkpoint's" }),
    lastSeq: z.number().int(),
    lastHash: z.string(),
    brokenAt: z.object({ seq: z.number().int(), reason: z.string() }).optional(),
  })
  .meta({ id: "ChainVerification" });

const verify = createRoute({
  method: "get",
  path: "/v1/audit/verify",
  tags: ["audit"],
  summary: "Verify the tenant's hash chain from its signed checkpoint (or whole, for admins) and report the first break, if any",
  description:
    "Walks the records after the last signed checkpoint (O(new records)); each must chain from the checkpoint's signed hash, " +
    "and the last must be the tenant's head. It only reads: the checkpoint is moved by the audit archiver (hourly) and by an admin's " +
    "`POST /v1/audit/checkpoint`. `full=true` (admin keys only) walks the whole chain.",
  middleware: auditors,
  request: {
    query: z.object({
      full: z.enum(["true", "false"]).optional().meta({ description: "walk the whole chain from its first record (admin keys only)" }),
    }),
  },
  responses: { 200: json("The verification", chainVerification), ...errorResponses(400, 401, 403) },
});

const checkpoint = createRoute({
  method: "post",
  path: "/v1/audit/checkpoint",
  tags: ["audit"],
  summary: "Verify what is new since the signed checkpoint and, if it verifies, sign the point reached and move the checkpoint there",
  description:
    "The audit archiver does this every hour for every tenant; an admin may do it now (before an incident report, say). " +
    "`GET /v1/audit/verify` only reads. A walk that does not verify leaves the checkpoint where it is and reports the first break.",
  middleware: requireRole("admin"),
  responses: {
    200: json("The verification (the checkpoint is at `lastSeq` when it is valid)", chainVerification),
    ...errorResponses(401, 403),
  },
});

const exportLines = createRoute({
  method: "get",
  path: "/v1/audit/export",
  tags: ["audit"],
  summary: "The whole audit chain (or one subject's records) as JSON Lines, for archiving and incident reports",
  middleware: auditors,
  request: { query: listAuditInput.pick({ subject: true, from: true, to: true }) },
  responses: {
    200: { description: "One audit record per line, in chain order", content: { "application/x-ndjson": { schema: z.string() } } },
    ...errorResponses(400, 401, 403),
  },
});

export const auditRoutes = (options: AppOptions) =>
  new OpenAPIHono<AppEnv>()
    .openapi(exportLines, async (c) => {
      const query = c.req.valid("query");
      const { ports, ctx } = c.var;
      c.header("content-disposition", `attachment; filename="audit-${ctx.tenantId}.jsonl"`);
      return jsonLines(c, async (write) => {
        let cursor: string | undefined;
        do {
          const page = await listAudit(ports, ctx, { ...query, limit: 500, cursor });
          if (page.items.length > 0) await write(`${page.items.map((record) => JSON.stringify(record)).join("\n")}\n`);
          cursor = page.next;
        } while (cursor);
      }) as never;
    })
    .openapi(list, async (c) => c.json(await listAudit(c.get("ports"), c.get("ctx"), c.req.valid("query")), 200))
    .openapi(verify, async (c) => {
      const full = c.req.valid("query").full === "true";
      if (full && c.get("principal").role !== "admin")
        throw new SimrootError("auth.forbidden", "forbidden", "Only an admin key may walk the whole audit chain");
      return c.json(await verifyAudit(c.get("ports"), await options.feedSigner(), c.get("ctx").tenantId, { full }), 200);
    })
    .openapi(checkpoint, async (c) =>
      c.json(await moveAuditCheckpoint(c.get("ports"), await options.feedSigner(), c.get("ctx").tenantId), 200),
    );
