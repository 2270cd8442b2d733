import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { components } from "../openapi.d.ts";
import { SimrootApiError } from "../problem.ts";
import type { Command, Context, OptionSpec } from "./command.ts";
import { listCommand } from "./list.ts";
import { cell, table, type Column } from "./render.ts";

type AuditRecord = components["schemas"]["AuditRecord"];
type Health = components["schemas"]["Health"];

const auditColumns: readonly Column<AuditRecord>[] = [
  ["seq", (r) => r.seq],
  ["time", (r) => r.time],
  ["action", (r) => r.action],
  ["subject", (r) => r.subject],
  ["actor", (r) => r.actor],
];

const rangeOptions = {
  subject: { type: "string", value: "<id>", description: "only records about this subject (a device id)" },
  from: { type: "string", value: "<iso-time>", description: "from this instant (inclusive)" },
  to: { type: "string", value: "<iso-time>", description: "to this instant (exclusive)" },
} as const satisfies Record<string, OptionSpec>;

async function verify(ctx: Context) {
  const result = await ctx.client.get("/v1/audit/verify", { params: { query: ctx.flag("full") ? { full: "true" } : {} } });
  ctx.print(result, (r) =>
    r.valid
      ? `valid: ${r.checked} records checked after seq ${r.from}, chain intact up to seq ${r.lastSeq} (${r.lastHash})`
      : `BROKEN at seq ${r.brokenAt?.seq ?? "?"}: ${r.brokenAt?.reason ?? "unknown"} (${r.checked} records checked)`,
  );
  return result.valid ? 0 : 1;
}

/** Streams the JSON Lines to `--out` (or stdout) without holding the chain in memory. */
async function exportLines(ctx: Context) {
  const query = { subject: ctx.opt("subject"), from: ctx.opt("from"), to: ctx.opt("to") };
  const body = await ctx.client.get("/v1/audit/export", { params: { query }, parseAs: "stream" });
  const out = ctx.opt("out");
  let records = 0;
  if (body) {
    await pipeline(
      Readable.fromWeb(body as WebReadableStream<Uint8Array>),
      async function* count(source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          for (const byte of chunk) if (byte === 10) records++;
          yield chunk;
        }
      },
      out ? createWriteStream(out) : ctx.stdout,
      { end: out !== undefined },
    );
  }
  if (out) ctx.note(`wrote ${records} audit records to ${out}`);
}

async function health(ctx: Context) {
  // 503 still carries the health report, so this reads both answers rather than throwing.
  const { data, error, response } = await ctx.client.http.GET("/health");
  const report: Health | undefined = data ?? (response.status === 503 ? (error as Health) : undefined);
  if (!report) throw SimrootApiError.from(response, error);
  ctx.print(report, (r) => {
    const components = table(Object.entries(r.components), [
      ["component", ([name]) => name],
      ["status", ([, c]) => c.status],
      [
        "detail",
        ([, c]) =>
          Object.entries(c.detail ?? {})
            .map(([key, value]) => `${key}=${cell(value)}`)
            .join(" "),
      ],
    ]);
    return `${components}\n\nstatus: ${r.status}`;
  });
  return report.status === "ok" ? 0 : 1;
}

export const healthCommand: Command = {
  group: "health",
  summary: "Report the state of the store and the bus (exit 1 when degraded)",
  auth: false,
  run: health,
};

export const auditCommands: Command[] = [
  listCommand({
    group: "audit",
    summary: "Audit records: the whole chain in order, or one subject's by time",
    path: "/v1/audit",
    columns: auditColumns,
    filters: rangeOptions,
  }),
  {
    group: "audit",
    name: "verify",
    summary:
      "Verify the hash chain from the signed checkpoint, or whole with --full (admin), and report the first break (exit 1 when broken)",
    options: { full: { type: "boolean", description: "walk the whole chain from its first record (admin keys only)" } },
    run: verify,
  },
  {
    group: "audit",
    name: "export",
    summary: "The audit chain as JSON Lines, for archives and incident reports",
    options: { ...rangeOptions, out: { type: "string", value: "<file.jsonl>", description: "write here instead of stdout" } },
    run: exportLines,
  },
];
