import { runAutomation, type Ports } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";
import { lambdaPorts } from "../lib/ports.ts";

/** The consumer over the given ports (the local runtime passes its own). */
export const handlerFor = (ports: () => Ports) =>
  consumer(
    "automation",
    async (envelope) => {
      await runAutomation(ports(), envelope);
    },
    ports,
  );

export const handler = handlerFor(lambdaPorts);
