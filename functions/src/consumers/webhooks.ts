import { dispatchToWebhooks, runtimePorts } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";

export const handler = consumer("webhooks", async (envelope) => {
  await dispatchToWebhooks(runtimePorts(), envelope);
});
