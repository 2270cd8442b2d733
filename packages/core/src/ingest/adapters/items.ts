/** What the adapters share to build their items: the facts they translate to, and accepted or refused items. */
import type { z } from "zod";
import { normalizedEventSchema, type CatalogueType, type EventPayload, type NormalizedEvent } from "../../catalogue/catalogue.ts";
import type { FieldIssue } from "../../error.ts";
import type { AdapterItem } from "../adapter.ts";

/** A catalogue event's type and payload, without the envelope (dedupe key, time, device) the adapter adds. */
export type Fact = { [Type in CatalogueType]: { readonly type: Type; readonly data: EventPayload<Type> } }[CatalogueType];

/** Why a fact could not be made, naming the fields. */
export type Refusal = { readonly issues: FieldIssue[] };

export function refused(index: number, issues: FieldIssue[]): AdapterItem {
  return { index, ok: false, issues };
}

/**
 * The item carrying these events, or refusing them with the issues of any that does not match
 * the catalogue's schema or could not be stored.
 */
export function checkedItem(index: number, events: NormalizedEvent[]): AdapterItem {
  const issues: FieldIssue[] = [];
  const checked = events.map((event) => {
    const parsed = normalizedEventSchema.safeParse(event);
    issues.push(...(parsed.success ? storageIssues(event) : zodIssues(parsed.error)));
    if (!parsed.success) return event;
    // Not a field of the schema (no sender may state it: a `simroot` sender's is dropped by its own parse), kept from
    // the adapter that chose the time.
    return (event.timeChosen === true ? { ...parsed.data, timeChosen: true } : parsed.data) as NormalizedEvent;
  });
  // The events as the catalogue spells them: one spelling of each address (review 119: a Data Streamer or CAMARA IPv6
  // address was kept as the operator wrote it, `2001:DB8:0:0:0:0:0:119`, and named no device bound as `2001:db8::119`).
  return issues.length > 0 ? refused(index, issues) : { index, ok: true, events: checked };
}

/** DynamoDB nests at most 32 levels in an item, and the audit and parked items wrap the event. */
const maxDepth = 16;
/** EventBridge carries at most 256 KB a PutEvents entry, envelope included; DynamoDB 400 KB an item. */
const maxEventBytes = 64 * 1024;
/** The smallest magnitude DynamoDB stores; the largest the SDK marshals is Number.MAX_SAFE_INTEGER. */
const smallestNumber = 1e-130;
/**
 * Characters of any text a fact keeps, a key included. The catalogue's named fields are shorter (a dedupe key 512, a
 * reason 500); this bounds what they leave free: a summary of what the source said (a description, an error message, an
 * operator's name), twice a reason. Each text went into the fact, its audit record and the feed up to the 64 KB of an
 * event (review 83).
 */
export const maxTextLength = 1_000;

/**
 * What the bus or the store could not carry, although the catalogue's schema allows it (a
 * `source.unhandled` summary is free-form): nesting too deep (it would also overflow the stack
 * of every JSON.stringify on the way), numbers DynamoDB refuses, empty keys, a body too large
 * for one bus entry. An event accepted with any of these would fail after the 202 and be lost.
 * Text longer than `maxTextLength` is refused too. The walk is iterative, so no depth overflows it.
 */
export function storageIssues(event: NormalizedEvent): FieldIssue[] {
  const stack: { value: unknown; path: string[] }[] = [{ value: event, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === "number" && !storableNumber(value)) {
      return [
        {
          path: path.join("."),
          message: `the number ${value} cannot be stored: its magnitude must lie between ${smallestNumber} and ${Number.MAX_SAFE_INTEGER}`,
        },
      ];
    }
    if (typeof value === "string" && value.length > maxTextLength) {
      return [{ path: path.join("."), message: `${value.length} characters: text is kept up to ${maxTextLength}` }];
    }
    if (value === null || typeof value !== "object") continue;
    if (path.length >= maxDepth) return [{ path: path.join("."), message: `nested deeper than ${maxDepth} levels` }];
    for (const [key, field] of Object.entries(value)) {
      if (key === "" && !Array.isArray(value)) return [{ path: path.join("."), message: "an empty key cannot be stored" }];
      if (key.length > maxTextLength) {
        return [{ path: path.join("."), message: `a key of ${key.length} characters: keys are kept up to ${maxTextLength}` }];
      }
      stack.push({ value: field, path: [...path, key] });
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(event));
  return bytes > maxEventBytes
    ? [{ path: "", message: `the event takes ${bytes} bytes of JSON; at most ${maxEventBytes} can be carried` }]
    : [];
}

function storableNumber(value: number): boolean {
  const magnitude = Math.abs(value);
  return Number.isFinite(value) && magnitude <= Number.MAX_SAFE_INTEGER && (magnitude === 0 || magnitude >= smallestNumber);
}

/** Zod's issues as field issues, the path dotted (`data.device.phoneNumber`). */
export function zodIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join("."), message: issue.message }));
}

/** The named keys of `data` that are present, for a summary. */
export function pick(data: Readonly<Record<string, unknown>>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((key) => data[key] !== undefined).map((key) => [key, data[key]]));
}
