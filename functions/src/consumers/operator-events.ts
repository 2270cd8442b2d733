import { applyOperatorEvent, publishOutcome, runtimePorts } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";

export const handler = consumer("operator-events", async (envelope) => {
  const ports = runtimePorts();
  await publishOutcome(ports, await applyOperatorEvent(ports, envelope.detail));
});
