import type { IoTCustomAuthorizerHandler } from "aws-lambda";
import { authorizeMqtt, integrationSettings, readOnlyPorts, type Ports } from "@simroot/core";

/** Built once per container: the authorizer reads devices and policies, and writes only the connections it let in (no ledger, bus or channel). */
let ports: Ports | undefined;

/** The AWS IoT Core custom authorizer: MQTT connections decided by simroot (see core's iot-authorizer). */
export const handler: IoTCustomAuthorizerHandler = async (event) => {
  const settings = integrationSettings().iot;
  const response = settings
    ? await authorizeMqtt((ports ??= readOnlyPorts()), settings, event)
    : {
        isAuthenticated: false,
        principalId: "unconfigured",
        disconnectAfterInSeconds: 300,
        refreshAfterInSeconds: 300,
        policyDocuments: [],
      };
  return response;
};
