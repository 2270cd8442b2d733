import type { TestRuntime } from "./runtime.ts";

/** Requests through the runtime's own DynamoDB client whose key names `marker` (e.g. `"K#<key id>"`), counted by a middleware on it. */
export function countReads(runtime: TestRuntime, marker: string) {
  const counted = { reads: 0 };
  const name = `countReads-${marker}-${Math.random()}`;
  runtime.ports.db.middlewareStack.add(
    (next) => async (args) => {
      if (JSON.stringify((args.input as { Key?: unknown }).Key ?? {}).includes(marker)) counted.reads++;
      return next(args);
    },
    { step: "initialize", name },
  );
  return { counted, stop: () => runtime.ports.db.middlewareStack.remove(name) };
}

/** Reads of the source `sourceId` through the runtime's own DynamoDB client. */
export const countSourceReads = (runtime: TestRuntime, sourceId: string) => countReads(runtime, `"SRC#${sourceId}"`);
