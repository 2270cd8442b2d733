import * as z from "zod";

export const problemSchema = z
  .object({
    type: z.string().meta({ example: "urn:simroot:problem:request.invalid" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string(),
    requestId: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: "Problem", description: "RFC 9457 problem details" });

/**
 * An error answer of a route: problem+json. Its description is written by the document's generator
 * (openapi-document.ts `problemDescriptions`), not carried in every function's bundle.
 */
export function errorResponses<const Codes extends number[]>(...codes: Codes) {
  return Object.fromEntries(
    codes.map((code) => [code, { description: "", content: { "application/problem+json": { schema: problemSchema } } }]),
  ) as { [Code in Codes[number]]: { description: string; content: { "application/problem+json": { schema: typeof problemSchema } } } };
}

export const json = <Schema extends z.ZodType>(description: string, schema: Schema) => ({
  description,
  content: { "application/json": { schema } },
});

export const pageOf = <Schema extends z.ZodType>(item: Schema, id: string) =>
  z.object({ items: z.array(item), next: z.string().optional().meta({ description: "cursor of the next page" }) }).meta({ id });
