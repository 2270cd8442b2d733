import * as z from "zod";
import type { Context } from "hono";
import { SimrootError } from "@simroot/core";

/** The strong ETag of a resource at a revision. */
export const etagOf = (revision: number) => `"${revision}"`;

/** The `If-Match` header every conditional write requires (absent: 428). */
export const ifMatchHeaders = z.object({
  "if-match": z.string().meta({
    description: 'The ETag you read (strong comparison, a weak `W/"3"` never matches), a list of them, or `*`. Absent: 428.',
    example: '"3"',
  }),
});

/** A validation issue about the `If-Match` header is its absence: RFC 6585 says 428, not 400. */
export const isMissingIfMatch = (target: string, paths: readonly string[]) => target === "header" && paths.includes("if-match");

export const preconditionRequired = () =>
  new SimrootError("request.precondition_required", "input", "Send If-Match with the ETag you read", { detail: { status: 428 } });

const preconditionFailed = () =>
  new SimrootError("request.precondition_failed", "conflict", "If-Match does not match the current ETag", { detail: { status: 412 } });

/**
 * Evaluates `If-Match` (RFC 9110 13.1.1) against the resource's current revision and returns
 * that revision for the conditional write: `*` matches any current representation, otherwise
 * one of the listed entity tags must be strongly equal to the current ETag; else 412.
 */
export async function matchedRevision(c: Context, current: () => Promise<number>): Promise<number> {
  const header = c.req.header("if-match");
  if (header === undefined || header.trim() === "") throw preconditionRequired();
  const revision = await current();
  const tags = header.split(",").map((tag) => tag.trim());
  if (tags.includes("*") || tags.includes(etagOf(revision))) return revision;
  throw preconditionFailed();
}
