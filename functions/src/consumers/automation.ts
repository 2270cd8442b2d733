import { publishOutcome, runAutomation, runtimePorts } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";

export const handler = consumer("automation", async (envelope) => {
  const ports = runtimePorts();
  await publishOutcome(ports, await runAutomation(ports, envelope));
});
