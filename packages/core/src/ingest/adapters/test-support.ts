/** What the adapter tests share: the clock, request building, and checks on items and errors. */
import { expect } from "vitest";
import { normalizedEventSchema, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import { SimrootError } from "../../error.ts";
import type { AdapterItem, IngestRequest } from "../adapter.ts";

/** The `now` of every request the adapter tests build. */
export const now = new Date("2026-03-01T12:00:00.000Z");

/** A POST as received: a body that is not a string is sent as its JSON. */
export function ingestRequest(
  body: unknown,
  headers: Record<string, string>,
  url = "https://simroot.example.com/v1/ingest/src_1",
): IngestRequest {
  return { method: "POST", url, headers, body: typeof body === "string" ? body : JSON.stringify(body), now };
}

/** The SimrootError `action` throws; fails the test when it throws nothing or something else. */
export function thrown(action: () => unknown): SimrootError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(SimrootError);
    return error as SimrootError;
  }
  throw new Error("expected a SimrootError");
}

/** The error of a request `action` refuses as not authentic (kind `auth`, code `ingest.unauthenticated`). */
export function authFailure(action: () => unknown): SimrootError {
  const error = thrown(action);
  expect(error.kind).toBe("auth");
  expect(error.code).toBe("ingest.unauthenticated");
  return error;
}

/** The error of a body `action` refuses as a whole (kind `input`, code `ingest.invalid_body`). */
export function invalidBodyFailure(action: () => unknown): SimrootError {
  const error = thrown(action);
  expect(error.code).toBe("ingest.invalid_body");
  expect(error.kind).toBe("input");
  return error;
}

/** The one event of the one item, which must be accepted and match the catalogue schema. */
export function onlyEvent(items: readonly AdapterItem[]): NormalizedEvent {
  expect(items).toHaveLength(1);
  const [item] = items;
  if (!item?.ok) throw new Error(`expected an accepted item, got ${JSON.stringify(item)}`);
  expect(item.events).toHaveLength(1);
  const [event] = item.events;
  expect(() => normalizedEventSchema.parse(event)).not.toThrow();
  return event!;
}
