import { dispatchToWebhooks, type Ports } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";
import { lambdaPortsWithSecrets } from "../lib/secrets.ts";

/** The consumer over the given ports (the local runtime passes its own). */
export const handlerFor = (ports: () => Ports) =>
  consumer(
    "webhooks",
    async (envelope) => {
      await dispatchToWebhooks(ports(), envelope);
    },
    ports,
  );

export const handler = handlerFor(lambdaPortsWithSecrets);
