import { integrationSettings, iotControlFor, syncDeviceToIot, type Ports } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";
import { lambdaPorts } from "../lib/ports.ts";

/** The consumer over the given ports (the local runtime passes its own). */
export const handlerFor = (ports: () => Ports) =>
  consumer(
    "iot-sync",
    async (envelope) => {
      const settings = integrationSettings().iot;
      if (settings) await syncDeviceToIot(ports(), await iotControlFor(settings), settings, envelope.detail);
    },
    ports,
  );

export const handler = handlerFor(lambdaPorts);
