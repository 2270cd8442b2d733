import type { Context } from "hono";
import { SimrootError } from "@simroot/core";

/** The strong ETag of a resource at a revision. */
export const etagOf = (revision: number) => `"${revision}"`;

/** The revision an `If-Match` header names: 428 when it is missing, 412 when it is not one of ours. */
export function requiredRevision(c: Context): number {
  const header = c.req.header("if-match");
  if (!header) {
    throw new SimrootError("request.precondition_required", "input", "Send If-Match with the ETag you read", { detail: { status: 428 } });
  }
  const match = /^(?:W\/)?"(\d+)"$/.exec(header.trim());
  if (!match) throw new SimrootError("request.precondition_failed", "conflict", "If-Match does not name a current ETag", { detail: { status: 412 } });
  return Number(match[1]);
}
