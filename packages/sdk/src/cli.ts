/**
 * `simroot`: the administrators' CLI, built on the SDK. `simroot --help` lists the commands;
 * exit codes: 0 done, 1 the API (or the network) said no, 2 the command line is wrong.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { createClient, withScheme } from "./client.ts";
import { isSimrootApiError, type Problem } from "./problem.ts";
import { accessCommands } from "./cli/access.ts";
import { apiCommand, operationsCommand } from "./cli/api.ts";
import { automationCommands } from "./cli/automation.ts";
import { auditCommands, healthCommand } from "./cli/audit.ts";
import { UsageError, type Command, type Context, type OptionSpec } from "./cli/command.ts";
import { deviceCommands } from "./cli/devices.ts";
import { ingestCommands } from "./cli/ingest.ts";
import { policyCommands } from "./cli/policy.ts";

export const commands: readonly Command[] = [
  healthCommand,
  ...deviceCommands,
  ...ingestCommands,
  ...accessCommands,
  ...policyCommands,
  ...automationCommands,
  ...auditCommands,
  operationsCommand,
  apiCommand,
];

const defaultUrl = "http://127.0.0.1:3000";
const globalOptions = {
  url: { type: "string", value: "<url>", description: `API base URL (default: $SIMROOT_URL or ${defaultUrl})` },
  key: { type: "string", value: "<api key>", description: "API key (default: $SIMROOT_API_KEY)" },
  json: { type: "boolean", description: "print JSON instead of tables" },
  help: { type: "boolean", short: "h", description: "show help" },
} as const satisfies Record<string, OptionSpec>;

export interface Io {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly fetch?: (request: Request) => Promise<Response>;
}

const title = (command: Command) => (command.name ? `${command.group} ${command.name}` : command.group);

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  const rows = Object.entries(options).map(
    ([name, spec]) => [`${spec.short ? `-${spec.short}, ` : ""}--${name}${spec.value ? ` ${spec.value}` : ""}`, spec.description] as const,
  );
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
}

function commandHelp(command: Command): string {
  const args = (command.args ?? []).map((arg) => ` <${arg}>`).join("");
  return [
    `Usage: simroot ${title(command)}${args}${command.options ? " [options]" : ""}`,
    "",
    command.summary,
    ...(command.options ? ["", "Options:", ...optionLines(command.options)] : []),
    "",
    "Global options:",
    ...optionLines(globalOptions),
  ].join("\n");
}

function listing(list: readonly Command[]): string[] {
  const width = Math.max(...list.map((command) => title(command).length + (command.args ?? []).map((arg) => ` <${arg}>`).join("").length));
  return list.map(
    (command) => `  ${`${title(command)}${(command.args ?? []).map((arg) => ` <${arg}>`).join("")}`.padEnd(width)}  ${command.summary}`,
  );
}

export function generalHelp(): string {
  return [
    "Usage: simroot <command> [options]",
    "",
    "Administer a simroot control plane: devices, ingestion sources, API keys, tenant settings, policies, grants, audit.",
    "",
    "Commands:",
    ...listing(commands),
    "",
    "Global options:",
    ...optionLines(globalOptions),
    "",
    "Run `simroot <command> --help` for a command's options. Exit codes: 0 done, 1 refused by the API, 2 usage error.",
  ].join("\n");
}

const groupHelp = (group: string) =>
  [`Usage: simroot ${group} <command> [options]`, "", "Commands:", ...listing(commands.filter((c) => c.group === group))].join("\n");

/** The command words: the first non-option tokens, skipping the values of global options. */
function commandWords(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const token = argv[i]!;
    if (token === "--") break;
    if (token.startsWith("-")) {
      if ((token === "--url" || token === "--key") && !token.includes("=")) i++;
      continue;
    }
    words.push(token);
  }
  return words;
}

function resolve(argv: readonly string[]): { command?: Command; help?: string; error?: string } {
  const [group, name] = commandWords(argv);
  if (group === undefined) return { help: generalHelp() };
  const candidates = commands.filter((command) => command.group === group);
  if (candidates.length === 0) return { error: `unknown command: ${group}`, help: generalHelp() };
  const single = candidates.find((command) => command.name === undefined);
  if (single) return { command: single };
  if (name === undefined) return { help: groupHelp(group) };
  const command = candidates.find((candidate) => candidate.name === name);
  return command ? { command } : { error: `unknown command: ${group} ${name}`, help: groupHelp(group) };
}

function printProblem(io: Io, problem: Problem, json: boolean) {
  if (json) return void io.stderr.write(`${JSON.stringify(problem, null, 2)}\n`);
  const lines = [`error: ${problem.title} (${problem.status}): ${problem.detail}`];
  for (const field of problem.errors ?? []) lines.push(`  ${field.path}: ${field.message}`);
  lines.push(
    `  type: ${problem.type}${problem.instance ? `  instance: ${problem.instance}` : ""}${problem.requestId ? `  request: ${problem.requestId}` : ""}`,
  );
  io.stderr.write(`${lines.join("\n")}\n`);
}

export async function main(argv: readonly string[], io: Io): Promise<number> {
  const wantsHelp = argv.some((token) => token === "--help" || token === "-h");
  const resolved = resolve(argv);
  if (!resolved.command) {
    // Asked for help: stdout, 0. No command, or an unknown one: the usage on stderr, 2.
    if (wantsHelp && !resolved.error) {
      io.stdout.write(`${resolved.help}\n`);
      return 0;
    }
    io.stderr.write(`${resolved.error ? `simroot: ${resolved.error}\n\n` : ""}${resolved.help}\n`);
    return 2;
  }
  const command = resolved.command;
  if (wantsHelp) {
    io.stdout.write(`${commandHelp(command)}\n`);
    return 0;
  }

  let json = argv.includes("--json");
  let baseUrl = io.env.SIMROOT_URL ?? defaultUrl;
  try {
    const options = { ...command.options, ...globalOptions } as ParseArgsConfig["options"];
    const parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
    json = values.json === true;
    const positionals = parsed.positionals.slice(command.name ? 2 : 1);
    const expected = command.args ?? [];
    if (positionals.length !== expected.length) {
      throw new UsageError(
        positionals.length < expected.length
          ? `missing <${expected[positionals.length]}>`
          : `unexpected argument: ${positionals[expected.length]}`,
        command,
      );
    }
    const apiKey = (values.key as string | undefined) ?? io.env.SIMROOT_API_KEY;
    if (command.auth !== false && !apiKey) throw new UsageError("no API key: pass --key or set SIMROOT_API_KEY", command);
    baseUrl = (values.url as string | undefined) ?? baseUrl;
    const client = createClient({ baseUrl, apiKey, fetch: io.fetch });
    const string = (name: string) => {
      const value = values[name];
      return typeof value === "string" ? value : undefined;
    };
    const ctx: Context = {
      client,
      json,
      stdout: io.stdout,
      arg: (name) => positionals[expected.indexOf(name)]!,
      opt: string,
      need: (name) => {
        const value = string(name);
        if (value === undefined) throw new UsageError(`--${name} is required`, command);
        return value;
      },
      flag: (name) => values[name] === true,
      many: (name) => {
        const value = values[name];
        return Array.isArray(value) ? value : typeof value === "string" ? [value] : [];
      },
      print: (data, human) => void io.stdout.write(`${json ? JSON.stringify(data, null, 2) : human(data)}\n`),
      note: (text) => void io.stderr.write(`${text}\n`),
      usage: (message) => new UsageError(message, command),
      request: async (method, path, init = {}) => {
        const response = await (io.fetch ?? fetch)(
          new Request(`${withScheme(baseUrl).replace(/\/+$/, "")}${path}`, {
            method,
            headers: {
              ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
              "x-request-id": crypto.randomUUID(),
              ...(init.body === undefined ? {} : { "content-type": "application/json" }),
              ...init.headers,
            },
            ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
          }),
        );
        const text = await response.text();
        let body: unknown = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {}
        return { status: response.status, body };
      },
    };
    return (await command.run(ctx)) ?? 0;
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      io.stderr.write(`simroot: ${(error as Error).message}\n\n${commandHelp(command)}\n`);
      return 2;
    }
    if (isSimrootApiError(error)) {
      printProblem(io, error.toJSON(), json);
      return 1;
    }
    // fetch rejects with a TypeError whose cause says why (ECONNREFUSED, ENOTFOUND, bad port).
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const why = `${(error as Error).message}${cause ? ` (${cause.code ?? cause.message})` : ""}`;
    io.stderr.write(`simroot: ${error instanceof TypeError && cause ? `cannot reach ${baseUrl}: ${why}` : why}\n`);
    return 1;
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2), { env: process.env, stdout: process.stdout, stderr: process.stderr });
}
