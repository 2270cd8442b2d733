import { detectEventAnomalies, publishOutcome, runtimePorts } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";

export const handler = consumer("detectors", async (envelope) => {
  const ports = runtimePorts();
  await publishOutcome(ports, await detectEventAnomalies(ports, envelope.detail));
});
