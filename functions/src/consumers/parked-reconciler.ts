import { replayParkedFor, runtimePorts } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";

export const handler = consumer("parked-reconciler", async (envelope) => {
  await replayParkedFor(runtimePorts(), envelope.detail);
});
