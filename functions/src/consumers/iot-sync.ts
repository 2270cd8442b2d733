import { integrationSettings, iotControlFor, runtimePorts, syncDeviceToIot } from "@simroot/core";
import { consumer } from "../lib/consumer.ts";

export const handler = consumer("iot-sync", async (envelope) => {
  const settings = integrationSettings().iot;
  if (settings) await syncDeviceToIot(runtimePorts(), await iotControlFor(settings), settings, envelope.detail);
});
