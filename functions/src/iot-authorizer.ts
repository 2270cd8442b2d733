import type { IoTCustomAuthorizerHandler } from "aws-lambda";
import { authorizeMqtt, integrationSettings } from "@simroot/core";
import { lambdaPorts } from "./lib/ports.ts";

/** The AWS IoT Core custom authorizer: MQTT connections decided by simroot (see core's iot-authorizer). */
export const handler: IoTCustomAuthorizerHandler = async (event) => {
  const settings = integrationSettings().iot;
  const response = settings
    ? await authorizeMqtt(lambdaPorts(), settings, event)
    : {
        isAuthenticated: false,
        principalId: "unconfigured",
        disconnectAfterInSeconds: 300,
        refreshAfterInSeconds: 300,
        policyDocuments: [],
      };
  return response;
};
