import type { z } from "zod";
import type { RequestContext } from "./context.ts";
import { SimrootError } from "./error.ts";
import type { Ports } from "./ports.ts";

/**
 * A schema's issues as the API reports them, each naming its field (`a.b.0`; `(body)` for the whole body). A field the
 * schema does not know is named itself, one issue per field, not the object that holds it.
 */
export function fieldIssues(issues: readonly z.core.$ZodIssue[]): { path: string; message: string }[] {
  const join = (path: readonly PropertyKey[]) => path.map(String).join(".") || "(body)";
  return issues.flatMap((issue) =>
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => ({ path: join([...issue.path, key]), message: "not a field of this request" }))
      : [{ path: join(issue.path), message: issue.message }],
  );
}

/** Parses `input` with `schema`, or throws an input error naming every bad field. */
export function parseInput<Schema extends z.ZodType>(schema: Schema, input: unknown): z.output<Schema> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = fieldIssues(result.error.issues);
  throw new SimrootError("request.invalid", "input", `Invalid input: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, {
    issues,
  });
}

export type Verb<Schema extends z.ZodType, Result> = ((ports: Ports, ctx: RequestContext, input: z.input<Schema>) => Promise<Result>) & {
  readonly schema: Schema;
};

/**
 * A domain verb: its input schema and its implementation, so that every transport
 * validates with the same schema (the HTTP layer reuses `verb.schema` for OpenAPI).
 */
export function verb<Schema extends z.ZodType, Result>(
  schema: Schema,
  impl: (ports: Ports, ctx: RequestContext, input: z.output<Schema>) => Promise<Result>,
): Verb<Schema, Result> {
  const run = (ports: Ports, ctx: RequestContext, input: z.input<Schema>) => impl(ports, ctx, parseInput(schema, input));
  return Object.assign(run, { schema });
}
