/** A device's MQTT CONNECT as AWS IoT Core hands it to simroot's custom authorizer (core integration/iot/iot-authorizer.ts). */
import { sign, type KeyObject } from "node:crypto";
import type { IoTCustomAuthorizerEvent } from "aws-lambda";
import { mqttSigningInput } from "@simroot/core";

/** What the device sends as its MQTT password (IoT passes it base64-encoded). */
export function mqttPassword(clientId: string, privateKey: KeyObject, publicKey: KeyObject, seconds = Math.floor(Date.now() / 1000)) {
  const spki = publicKey.export({ type: "spki", format: "der" }).toString("base64url");
  const signature = sign("sha256", mqttSigningInput(clientId, seconds), privateKey).toString("base64url");
  return Buffer.from(`v1.${seconds}.${spki}.${signature}`).toString("base64");
}

/** The event IoT Core invokes the authorizer with on an MQTT CONNECT to `host`. */
export const mqttConnect = (host: string, clientId: string, password: string): IoTCustomAuthorizerEvent => ({
  signatureVerified: false,
  protocols: ["tls", "mqtt"],
  protocolData: {
    tls: { serverName: host },
    mqtt: { clientId, username: "meter?x-amz-customauthorizer-name=simroot", password },
  },
  connectionMetadata: { id: crypto.randomUUID() },
});
