import { integrationSettings, runtimePorts, syncPostureToTailscale } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";

export const handler = consumer("posture-sync", async (envelope) => {
  const settings = integrationSettings().tailscale;
  if (settings) await syncPostureToTailscale(runtimePorts(), settings, envelope.detail);
});
