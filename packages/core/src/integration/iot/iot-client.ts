import { IoTClient } from "@aws-sdk/client-iot";
import type { IntegrationSettings } from "../../config.ts";
import { sdkIotControl } from "./iot-sdk.ts";
import type { IotControl } from "./iot-port.ts";

const clients = new Map<string, IotControl>();

/** The IoT port for the configured account: one SDK client per endpoint, reused across invocations. */
export function iotControlFor(settings: NonNullable<IntegrationSettings["iot"]>): IotControl {
  const key = settings.endpoint ?? "";
  let control = clients.get(key);
  if (!control) {
    control = sdkIotControl(new IoTClient(settings.endpoint ? { endpoint: settings.endpoint } : {}));
    clients.set(key, control);
  }
  return control;
}
