import { exportEventToSiem, integrationSettings } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";

export const handler = consumer("siem-export", async (envelope) => {
  const settings = integrationSettings().siem;
  if (settings) await exportEventToSiem(settings, envelope.detail);
});
