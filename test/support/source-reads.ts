import type { TestRuntime } from "./runtime.ts";

/** Reads of the source `sourceId` through the runtime's own DynamoDB client, counted by a middleware on it. */
export function countSourceReads(runtime: TestRuntime, sourceId: string) {
  const counted = { reads: 0 };
  const name = `countSourceReads-${sourceId}`;
  runtime.ports.db.middlewareStack.add(
    (next) => async (args) => {
      if (JSON.stringify((args.input as { Key?: unknown }).Key ?? {}).includes(`"SRC#${sourceId}"`)) counted.reads++;
      return next(args);
    },
    { step: "initialize", name },
  );
  return { counted, stop: () => runtime.ports.db.middlewareStack.remove(name) };
}
