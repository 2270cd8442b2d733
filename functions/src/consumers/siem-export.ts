import { exportEventToSiem, integrationSettings } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";

/** Needs no ports: it forwards the event to the SIEM as OCSF. */
export const handlerFor = () =>
  consumer("siem-export", async (envelope) => {
    const settings = integrationSettings().siem;
    if (settings) await exportEventToSiem(settings, envelope.detail);
  });

export const handler = handlerFor();
