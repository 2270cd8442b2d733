/**
 * What every PATCH shares: a change must name something (an empty one is refused, 400), and a change that names only
 * values the resource holds already is answered with the resource as it is, with no new revision and nothing audited.
 */
import type * as z from "zod";

/** `changes` refusing an empty object, its message naming what may change. */
export const someChange = <Shape extends z.ZodRawShape>(changes: z.ZodObject<Shape>) =>
  changes
    .refine((value) => Object.keys(value).length > 0, `change at least one of ${Object.keys(changes.shape).join(", ")}`)
    .meta({ minProperties: 1 });

/** True when every field `changes` names holds that value in `current` already. */
export const changesNothing = (current: object, changes: object) =>
  Object.entries(changes).every(([key, value]) => value === undefined || sameValue((current as Record<string, unknown>)[key], value));

/** `util.isDeepStrictEqual`, taken on use: imported as an ES module, node:util costs a cold start about 3 ms. */
export const sameValue = (a: unknown, b: unknown) => process.getBuiltinModule("node:util").isDeepStrictEqual(a, b);
