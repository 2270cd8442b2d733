import type { IntegrationSettings } from "../../config.ts";
import type { IotControl } from "./iot-port.ts";

const clients = new Map<string, Promise<IotControl>>();

/**
 * The IoT port for the configured account: one SDK client per endpoint, reused across
 * invocations. The SDK is loaded on first use, so that no other function's cold start pays for it.
 */
export function iotControlFor(settings: NonNullable<IntegrationSettings["iot"]>): Promise<IotControl> {
  const key = settings.endpoint ?? "";
  let control = clients.get(key);
  if (!control) {
    control = (async () => {
      const { IoTClient } = await import("@aws-sdk/client-iot");
      const { sdkIotControl } = await import("./iot-sdk.ts");
      return sdkIotControl(new IoTClient(settings.endpoint ? { endpoint: settings.endpoint } : {}));
    })();
    clients.set(key, control);
  }
  return control;
}
