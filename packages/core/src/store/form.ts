/**
 * Stored forms (review 140, 141). During a deploy, and after a rollback, instances of two releases read and write the same
 * items. An item rewritten whole from what the writing code knows of it (read, changed in memory, put back) loses what a
 * newer release stored in it, silently, when the writing code is older. An item of such a kind carries the form it is
 * stored in (`format`; an item without one is of form 1), and code meeting a form newer than its own refuses the item
 * (`store.newer_format`, a retryable 503) rather than change it. A release that changes what the item holds raises the
 * form, after a release that reads the new form and still writes the old one (README, Rollback).
 */
import { SimrootError } from "../error.ts";

/**
 * The item without its form marker, or the refusal of one of a form newer than `known`: retryable (an instance of the
 * newer release reads it). `what`: the item as the refusal names it ("Device dev_...").
 */
export function storedForm<Item extends Record<string, unknown>>(item: Item, known: number, what: string): Omit<Item, "format"> {
  const { format, ...rest } = item;
  if (format !== undefined && !(Number.isInteger(format) && (format as number) >= 1 && (format as number) <= known))
    throw new SimrootError(
      "store.newer_format",
      "unavailable",
      `${what} is stored in a form this release does not read (${String(format)}; it reads up to ${known}): a deploy is under way, retry`,
    );
  return rest;
}
