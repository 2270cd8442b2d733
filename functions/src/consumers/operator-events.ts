import { applyReported, type Ports } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";
import { lambdaPorts } from "../lib/ports.ts";

/** The consumer over the given ports (the local runtime passes its own). */
export const handlerFor = (ports: () => Ports) =>
  consumer(
    "operator-events",
    async (envelope) => {
      await applyReported(ports(), envelope.detail);
    },
    ports,
  );

export const handler = handlerFor(lambdaPorts);
