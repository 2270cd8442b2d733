/**
 * The API's contract documents, `/openapi.json` and `/asyncapi.json`: `packages/api/openapi.json`
 * and `packages/api/asyncapi.json`, written by `npm run contracts` (from the routes and from
 * core's event catalogue) and checked in, so a change of a contract is a reviewed diff.
 * `test/openapi-contract.test.ts` and `test/asyncapi-contract.test.ts` fail when a file differs
 * from what the code says. In Lambda they are shipped beside the bundle (`files` in core's
 * platform definition): the generators, and the zod they keep, stay out of every function.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export type DocumentName = "openapi.json" | "asyncapi.json";

/** Where the document is kept in the repository. */
export const documentFile = (name: DocumentName) => fileURLToPath(new URL(`../${name}`, import.meta.url));

const read = new Map<DocumentName, Promise<string>>();

/** The document's JSON text, read once (a failed read is tried again on the next request). */
export function servedDocument(name: DocumentName): Promise<string> {
  const root = process.env.LAMBDA_TASK_ROOT;
  let text = read.get(name);
  if (!text) {
    text = readFile(root ? join(root, name) : documentFile(name), "utf8");
    text.catch(() => read.delete(name));
    read.set(name, text);
  }
  return text;
}
