import type { IoTCustomAuthorizerHandler } from "aws-lambda";
import { authorizeMqtt, integrationSettings, runtimePorts } from "@simroot/core";

/** The AWS IoT Core custom authorizer: MQTT connections decided by simroot (see core's iot-authorizer). */
export const handler: IoTCustomAuthorizerHandler = async (event) => {
  const settings = integrationSettings().iot;
  const response = settings
    ? await authorizeMqtt(runtimePorts(), settings, event)
    : {
        isAuthenticated: false,
        principalId: "unconfigured",
        disconnectAfterInSeconds: 300,
        refreshAfterInSeconds: 300,
        policyDocuments: [],
      };
  return response;
};
