import { integrationSettings, syncPostureToTailscale, type Ports } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";
import { lambdaPorts } from "../lib/ports.ts";

/** The consumer over the given ports (the local runtime passes its own). */
export const handlerFor = (ports: () => Ports) =>
  consumer(
    "posture-sync",
    async (envelope) => {
      const settings = integrationSettings().tailscale;
      if (settings) await syncPostureToTailscale(ports(), settings, envelope.detail);
    },
    ports,
  );

export const handler = handlerFor(lambdaPorts);
