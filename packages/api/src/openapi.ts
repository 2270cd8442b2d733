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

const problemDescriptions: Record<number, string> = {
  400: "Invalid input: `errors` names each bad field",
  401: "Missing or invalid API key",
  403: "The key's role may not do this",
  404: "No such resource in this tenant",
  409: "Conflicts with the current state",
  412: "`If-Match` does not match the current ETag",
  413:
    "The body is too large, or (ingestion) it reports more than 250 facts or 200 KB of one device " +
    "(`ingest.too_many_for_device`, naming the device): nothing of it was recorded; split it and send again",
  503:
    "A dependency is down, (ingestion) the applier's backlog is past its bound, or (devices) a deploy is under way and the " +
    "device is stored in a newer release's form (`store.newer_format`): retry after Retry-After seconds",
};

export function errorResponses<const Codes extends number[]>(...codes: Codes) {
  return Object.fromEntries(
    codes.map((code) => [
      code,
      { description: problemDescriptions[code] ?? "Error", content: { "application/problem+json": { schema: problemSchema } } },
    ]),
  ) as { [Code in Codes[number]]: { description: string; content: { "application/problem+json": { schema: typeof problemSchema } } } };
}

export const json = <Schema extends z.ZodType>(description: string, schema: Schema) => ({
  description,
  content: { "application/json": { schema } },
});

export const pageOf = <Schema extends z.ZodType>(item: Schema, id: string) =>
  z.object({ items: z.array(item), next: z.string().optional().meta({ description: "cursor of the next page" }) }).meta({ id });
