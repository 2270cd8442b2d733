import type { SimrootClient } from "../client.ts";

/** A mistake in how the CLI was called: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  readonly command?: Command;
  constructor(message: string, command?: Command) {
    super(message);
    this.command = command;
  }
}

export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly multiple?: boolean;
  readonly short?: string;
  /** Shown in help, e.g. `<digits>`. */
  readonly value?: string;
  readonly description: string;
}

export interface Context {
  readonly client: SimrootClient;
  /** Print `--json` as JSON, otherwise the human rendering. */
  readonly json: boolean;
  /** A positional argument by its name in `args`. */
  arg(name: string): string;
  opt(name: string): string | undefined;
  /** A string option the command cannot do without. */
  need(name: string): string;
  flag(name: string): boolean;
  many(name: string): string[];
  /** Prints `data` (JSON with `--json`, else `human(data)`) to stdout. */
  print<T>(data: T, human: (data: T) => string): void;
  /** A line for people on stderr (never mixed into `--json` output). */
  note(text: string): void;
  readonly stdout: NodeJS.WritableStream;
  /** Raised as a usage error of this command (exit 2). */
  usage(message: string): UsageError;
  /** A raw request to the control plane (with the key, if any): the status and the parsed JSON body. */
  request(
    method: string,
    path: string,
    init?: { readonly headers?: Record<string, string>; readonly body?: unknown },
  ): Promise<{ status: number; body: unknown }>;
}

export interface Command {
  /** `devices`, `health`, ... */
  readonly group: string;
  /** The sub-command (`list`, `get`); absent for one-word commands (`health`, `decide`). */
  readonly name?: string;
  /** Names of the required positional arguments, in order. */
  readonly args?: readonly string[];
  readonly summary: string;
  readonly options?: Readonly<Record<string, OptionSpec>>;
  /** False for routes that need no API key. */
  readonly auth?: boolean;
  /** Returns the exit code (0 when omitted). */
  run(ctx: Context): Promise<number> | Promise<void>;
}

export const pageOptions = {
  limit: { type: "string", value: "<n>", description: "items per page (the API's default when omitted)" },
  cursor: { type: "string", value: "<cursor>", description: "continue from this cursor (printed after a page)" },
  all: { type: "boolean", description: "follow cursors and print every item" },
} as const satisfies Record<string, OptionSpec>;

/** `--limit` as the number the API expects. */
export function limitOf(ctx: Context): number | undefined {
  const raw = ctx.opt("limit");
  if (raw === undefined) return undefined;
  const limit = Number(raw);
  if (!Number.isInteger(limit) || limit < 1) throw ctx.usage(`--limit must be a positive integer, not ${raw}`);
  return limit;
}

export function booleanOf(ctx: Context, name: string): boolean | undefined {
  const raw = ctx.opt(name);
  if (raw === undefined) return undefined;
  if (raw === "true" || raw === "false") return raw === "true";
  throw ctx.usage(`--${name} must be true or false, not ${raw}`);
}

/** `--label k=v`, repeatable. */
export function labelsOf(ctx: Context, name = "label"): Record<string, string> | undefined {
  const pairs = ctx.many(name);
  if (pairs.length === 0) return undefined;
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf("=");
      if (at <= 0) throw ctx.usage(`--${name} takes key=value, not ${pair}`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

/** A string option limited to `allowed` values. */
export function choiceOf<T extends string>(ctx: Context, name: string, allowed: readonly T[], required = false): T | undefined {
  const value = required ? ctx.need(name) : ctx.opt(name);
  if (value === undefined || (allowed as readonly string[]).includes(value)) return value as T | undefined;
  throw ctx.usage(`--${name} must be one of ${allowed.join(", ")}, not ${value}`);
}

/** The ETag for `If-Match`: `--if-match`, else the one the resource answered with when read. */
export async function etagFor(ctx: Context, read: () => Promise<string | undefined>): Promise<string> {
  const etag = ctx.opt("if-match") ?? (await read());
  if (etag === undefined) throw new UsageError("the server sent no ETag to send back in If-Match: pass --if-match");
  return etag;
}
