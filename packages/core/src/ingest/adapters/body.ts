/** Reading a webhook body as JSON, and the `ingest.invalid_body` error for a body that is unusable as a whole. */
import { SimrootError } from "../../error.ts";
import { maxEventsPerRequest, tooManyEvents } from "../backlog.ts";

/** Builds a format's `ingest.invalid_body` error: `Invalid <what>: <message>`, the issue at `path` ("" is the body itself). */
export type InvalidBody = (message: string, path?: string) => SimrootError;

/** The `InvalidBody` of a format whose body is called `what` ("CAMARA body"). */
export function invalidBodyOf(what: string): InvalidBody {
  return (message, path = "") =>
    new SimrootError("ingest.invalid_body", "input", `Invalid ${what}: ${message}`, { issues: [{ path, message }] });
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The body parsed as JSON; refused when it is not JSON. */
export function parseJson(body: string, invalidBody: InvalidBody): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw invalidBody("the body is not JSON");
  }
}

/**
 * A batch's items, refused as a whole (413 `ingest.too_many_events`) when there are more than a request may carry
 * events, before any is read: each item costs a validation and a line of the answer, and a 1 MiB body lists 524,000
 * of `[1,1,...]` (12-15 s of CPU and a 58 MB answer when they were read one by one: review 78).
 */
export function atMostPerRequest<Item>(items: Item[], what = "items"): Item[] {
  if (items.length > maxEventsPerRequest) throw tooManyEvents(items.length, what);
  return items;
}

/** One JSON object, or a JSON array (a batch): the items of the body. Anything else is refused with `expected`. */
export function jsonItems(body: string, invalidBody: InvalidBody, expected: string): unknown[] {
  const parsed = parseJson(body, invalidBody);
  if (Array.isArray(parsed)) return atMostPerRequest(parsed);
  if (isRecord(parsed)) return [parsed];
  throw invalidBody(expected);
}

/** A body that must be one JSON object. Anything else is refused with `expected`. */
export function jsonObject(body: string, invalidBody: InvalidBody, expected: string): Record<string, unknown> {
  const parsed = parseJson(body, invalidBody);
  if (!isRecord(parsed)) throw invalidBody(expected);
  return parsed;
}
