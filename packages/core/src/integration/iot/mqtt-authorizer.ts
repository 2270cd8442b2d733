/**
 * What AWS IoT Core's custom authorizers are asked and answer (its documented request and response), shared by the
 * devices' authorizer (iot-authorizer.ts) and the feed channel's (feed/subscriber-authorizer.ts), which writes nothing
 * and so holds none of the devices' authorizer in its bundle.
 */
export interface MqttAuthorizerRequest {
  readonly token?: string;
  readonly signatureVerified?: boolean;
  readonly protocols: readonly string[];
  readonly protocolData: {
    readonly tls?: { readonly serverName: string };
    readonly mqtt?: { readonly username?: string; readonly password?: string; readonly clientId?: string };
  };
  readonly connectionMetadata: { readonly id: string };
}

export interface IotPolicyDocument {
  readonly Version: "2012-10-17";
  readonly Statement: { readonly Action: string | string[]; readonly Effect: "Allow" | "Deny"; readonly Resource: string | string[] }[];
}

export interface MqttAuthorizerResponse {
  readonly isAuthenticated: boolean;
  readonly principalId: string;
  readonly disconnectAfterInSeconds: number;
  readonly refreshAfterInSeconds: number;
  readonly policyDocuments: IotPolicyDocument[];
}

/** IoT's bounds for both durations are 300..86,400 seconds: a state change reaches open connections within 5 minutes. */
export const refreshAfterInSeconds = 300;

/** A refused CONNECT (asked again at the shortest interval IoT allows). */
export const denyMqtt = (principal: string): MqttAuthorizerResponse => ({
  isAuthenticated: false,
  principalId: principal,
  disconnectAfterInSeconds: refreshAfterInSeconds,
  refreshAfterInSeconds,
  policyDocuments: [],
});

/** An IoT resource ARN in any region and account: `client`, `topic` or `topicfilter`, and its name. */
export const iotArn = (kind: string, name: string) => `arn:aws:iot:*:*:${kind}/${name}`;
