/**
 * Every operation of the API from the command line, derived from the OpenAPI document the
 * control plane serves (`/openapi.json`): a route added to the API is a command at once, with no
 * release of the CLI. `simroot operations` lists them; `simroot api <operationId>` calls one:
 *
 *   simroot api getDevicesById --param id=dev_...
 *   simroot api createDevices --body '{"imsi":"208011234567890"}'
 *   simroot api updateDevicesById --param id=dev_... --header 'If-Match="3"' --body-file changes.json
 *
 * Path parameters are required; other `--param`s go to the query. The answer is printed as JSON;
 * a problem answer exits 1 as every other command does.
 */
import { readFile } from "node:fs/promises";
import { SimrootApiError, type Problem } from "../problem.ts";
import type { Command, Context } from "./command.ts";

const methods = ["get", "put", "post", "patch", "delete"] as const;

interface Operation {
  readonly operationId: string;
  readonly method: (typeof methods)[number];
  readonly path: string;
  readonly summary: string;
  readonly parameters: readonly { name: string; in: string; required?: boolean }[];
  readonly body: boolean;
}

/** What is read of the served document (its parameters may be `$ref`s to `components.parameters`). */
type ParameterNode = { name: string; in: string; required?: boolean; $ref?: string };
type OperationNode = { operationId?: string; summary?: string; parameters?: ParameterNode[]; requestBody?: unknown };
type PathNode = { parameters?: ParameterNode[] } & { [method in (typeof methods)[number]]?: OperationNode };
type ServedDocument = { paths?: Record<string, PathNode>; components?: { parameters?: Record<string, ParameterNode> } };

/** The operations of the served document, in path order. */
async function operations(ctx: Context): Promise<Operation[]> {
  const answer = await ctx.request("GET", "/openapi.json");
  if (answer.status !== 200) throw new Error(`the control plane did not serve /openapi.json (${answer.status})`);
  const document = answer.body as ServedDocument;
  const resolve = (node: ParameterNode) =>
    typeof node.$ref === "string" ? (document.components?.parameters?.[node.$ref.split("/").pop()!] ?? node) : node;
  const found: Operation[] = [];
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const method of methods) {
      const operation = item[method];
      if (!operation?.operationId) continue;
      found.push({
        operationId: operation.operationId,
        method,
        path,
        summary: operation.summary ?? "",
        parameters: [...(item.parameters ?? []), ...(operation.parameters ?? [])].map(resolve),
        body: operation.requestBody !== undefined,
      });
    }
  }
  return found;
}

/** `name=value` pairs of a repeatable option. */
function pairs(ctx: Context, option: string, separator = "="): Map<string, string> {
  const values = new Map<string, string>();
  for (const pair of ctx.many(option)) {
    const at = pair.indexOf(separator);
    if (at <= 0) throw ctx.usage(`--${option} takes name${separator}value, not ${pair}`);
    values.set(pair.slice(0, at), pair.slice(at + 1));
  }
  return values;
}

export const operationsCommand: Command = {
  group: "operations",
  summary: "List every operation of the API (from the document the control plane serves): operationId, method, path",
  auth: false,
  async run(ctx) {
    const found = await operations(ctx);
    const width = Math.max(...found.map((operation) => operation.operationId.length));
    ctx.print(
      found.map(({ operationId, method, path, summary }) => ({ operationId, method: method.toUpperCase(), path, summary })),
      (rows) => rows.map((row) => `${row.operationId.padEnd(width)}  ${row.method.padEnd(6)} ${row.path}  ${row.summary}`).join("\n"),
    );
  },
};

export const apiCommand: Command = {
  group: "api",
  args: ["operationId"],
  summary: "Call any operation of the API by its operationId (see `simroot operations`); prints the answer as JSON",
  options: {
    param: { type: "string", multiple: true, value: "<name=value>", description: "a path or query parameter (repeatable)" },
    header: { type: "string", multiple: true, value: "<name=value>", description: 'a request header, e.g. If-Match="3" (repeatable)' },
    body: { type: "string", value: "<json>", description: "the request body, JSON" },
    "body-file": { type: "string", value: "<path>", description: "the request body, from a JSON file" },
  },
  async run(ctx) {
    const wanted = ctx.arg("operationId");
    const operation = (await operations(ctx)).find((candidate) => candidate.operationId === wanted);
    if (!operation) throw ctx.usage(`no operation ${wanted}: run \`simroot operations\` for the list`);
    const params = pairs(ctx, "param");
    let path = operation.path;
    for (const parameter of operation.parameters.filter((candidate) => candidate.in === "path")) {
      const value = params.get(parameter.name);
      if (value === undefined) throw ctx.usage(`${wanted} needs --param ${parameter.name}=<value>`);
      path = path.replace(`{${parameter.name}}`, encodeURIComponent(value));
      params.delete(parameter.name);
    }
    const query = new URLSearchParams([...params]);
    const file = ctx.opt("body") === undefined ? ctx.opt("body-file") : undefined;
    let text = ctx.opt("body");
    if (file !== undefined) {
      try {
        text = await readFile(file, "utf8");
      } catch (error) {
        throw ctx.usage(`cannot read ${file}: ${(error as Error).message}`);
      }
    }
    let body: unknown;
    if (text !== undefined) {
      if (!operation.body) throw ctx.usage(`${wanted} takes no body`);
      try {
        body = JSON.parse(text);
      } catch {
        throw ctx.usage(`${file ?? "--body"} is not JSON`);
      }
    }
    const answer = await ctx.request(operation.method.toUpperCase(), `${path}${query.size > 0 ? `?${query}` : ""}`, {
      headers: Object.fromEntries(pairs(ctx, "header")),
      ...(body === undefined ? {} : { body }),
    });
    if (answer.status >= 400) {
      const problem = answer.body as Partial<Problem> | undefined;
      throw new SimrootApiError(
        typeof problem?.type === "string"
          ? (problem as Problem)
          : { type: "about:blank", title: "http.error", status: answer.status, detail: String(answer.body ?? ""), errors: [] },
      );
    }
    ctx.print(answer.body ?? { status: answer.status }, (data) => JSON.stringify(data, null, 2));
  },
};
