/**
 * AWS IoT Core as an enforcement point: a custom authorizer that decides each MQTT CONNECT
 * from simroot's state and policy, with IoT's documented request (`protocolData.mqtt`
 * { clientId, username, password (base64) }, `protocolData.tls.serverName`) and response
 * (`isAuthenticated`, `principalId`, `policyDocuments`, `disconnectAfterInSeconds`,
 * `refreshAfterInSeconds`).
 *
 * Authentication is SIM-rooted: the client id is the simroot device id, and the MQTT password
 * is `v1.<unix seconds>.<SPKI, base64url>.<signature, base64url>`, a signature by the device's
 * IoT SAFE key (inside the SIM) over `simroot-mqtt|v1|<client id>|<seconds>`, at most five minutes
 * old. The key must be the credential registered for that device (its SPKI SHA-256). Then:
 * revoked or suspended devices are refused; the tenant's policy must allow the device to reach
 * the MQTT endpoint (host, 8883/tcp) on its bearer; a quarantined device may only use its
 * quarantine topics; an active one gets its own topics and one topic tree per label.
 */
import { createHash, createPublicKey, verify } from "node:crypto";
import { systemContext } from "../../context.ts";
import type { Device } from "../../device/device.ts";
import { readDevice } from "../../device/store.ts";
import { sessionCountry } from "../../identity/session-country.ts";
import { evaluateWhatIf } from "../../policy/what-if.ts";
import type { Ports } from "../../ports.ts";

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

export interface AuthorizerSettings {
  readonly tenantId: string;
  /** The MQTT endpoint's host name, the destination the tenant's policy must allow. */
  readonly mqttHost?: string;
}

const maxSkewSeconds = 300;
/** IoT's bounds for both durations are 300..86,400 seconds: a state change reaches open connections within 5 minutes. */
const refreshAfterInSeconds = 300;
const safeSegment = /^[A-Za-z0-9._-]{1,64}$/;

export const mqttSigningInput = (clientId: string, seconds: number) => Buffer.from(`simroot-mqtt|v1|${clientId}|${seconds}`);

/** A refused CONNECT (asked again at the shortest interval IoT allows). Shared with the feed channel's authorizer. */
export const denyMqtt = (principal: string): MqttAuthorizerResponse => ({
  isAuthenticated: false,
  principalId: principal,
  disconnectAfterInSeconds: refreshAfterInSeconds,
  refreshAfterInSeconds,
  policyDocuments: [],
});

/** Checks the password's signature against the device's registered IoT SAFE credential. */
function proves(device: Device, clientId: string, password: string, now: Date): boolean {
  const [version, seconds, spki, signature] = password.split(".");
  if (version !== "v1" || !seconds || !spki || !signature || !/^\d{1,12}$/.test(seconds)) return false;
  if (Math.abs(now.getTime() / 1000 - Number(seconds)) > maxSkewSeconds) return false;
  const der = Buffer.from(spki, "base64url");
  if (!device.credentialFingerprint || createHash("sha256").update(der).digest("hex") !== device.credentialFingerprint) return false;
  try {
    const key = createPublicKey({ key: der, format: "der", type: "spki" });
    const algorithm = key.asymmetricKeyType === "ed25519" || key.asymmetricKeyType === "ed448" ? null : "sha256";
    return verify(algorithm, mqttSigningInput(clientId, Number(seconds)), key, Buffer.from(signature, "base64url"));
  } catch {
    return false;
  }
}

/** An IoT resource ARN in any region and account: `client`, `topic` or `topicfilter`, and its name. */
export const iotArn = (kind: string, name: string) => `arn:aws:iot:*:*:${kind}/${name}`;

/** The topics a device may use: its own, plus one read-only tree per label whose key and value are plain segments. */
export function topicPolicy(device: Device): IotPolicyDocument {
  const own = device.id;
  if (device.state === "quarantined") {
    return {
      Version: "2012-10-17",
      Statement: [
        { Effect: "Allow", Action: "iot:Connect", Resource: iotArn("client", own) },
        { Effect: "Allow", Action: ["iot:Publish", "iot:Receive"], Resource: iotArn("topic", `quarantine/${own}/*`) },
        { Effect: "Allow", Action: "iot:Subscribe", Resource: iotArn("topicfilter", `quarantine/${own}/*`) },
      ],
    };
  }
  // A label value such as `*` or `#` would widen the grant: only plain segments become topics.
  const labels = Object.entries(device.labels).filter(([key, value]) => safeSegment.test(key) && safeSegment.test(value));
  const labelTopics = labels.map(([key, value]) => `labels/${key}/${value}/*`);
  return {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Action: "iot:Connect", Resource: iotArn("client", own) },
      { Effect: "Allow", Action: "iot:Publish", Resource: iotArn("topic", `devices/${own}/*`) },
      { Effect: "Allow", Action: "iot:Subscribe", Resource: [`cmd/${own}/*`, ...labelTopics].map((topic) => iotArn("topicfilter", topic)) },
      { Effect: "Allow", Action: "iot:Receive", Resource: [`cmd/${own}/*`, ...labelTopics].map((topic) => iotArn("topic", topic)) },
    ],
  };
}

export async function authorizeMqtt(
  ports: Ports,
  settings: AuthorizerSettings,
  request: MqttAuthorizerRequest,
): Promise<MqttAuthorizerResponse> {
  const mqtt = request.protocolData.mqtt;
  const clientId = mqtt?.clientId ?? "";
  const principal = clientId.replace(/[^A-Za-z0-9]/g, "").slice(0, 128) || "unknown";
  if (!/^dev_[A-Za-z0-9]{1,64}$/.test(clientId) || !mqtt?.password) return denyMqtt(principal);
  const stored = await readDevice(ports, settings.tenantId, clientId);
  const now = ports.now();
  if (!stored || !proves(stored.device, clientId, Buffer.from(mqtt.password, "base64").toString("utf8"), now)) return denyMqtt(principal);
  const device = stored.device;
  if (device.state === "revoked" || device.state === "suspended") return denyMqtt(principal);
  const host = request.protocolData.tls?.serverName ?? settings.mqttHost;
  if (!host) return denyMqtt(principal);
  // IoT Core names no source address, so not the bearer the connection came over: each bearer the device holds a session
  // on must allow it, and with no session the bearer is unknown and meets no bearer condition, as at a PEP (review 122:
  // the first session's bearer, or cellular without one, let a cellular-only rule allow a device on another bearer or none).
  const sessions = Object.values(device.identity.sessions).filter((session) => session !== undefined);
  for (const session of sessions.length === 0 ? [undefined] : sessions) {
    const country = sessionCountry(device.identity, session);
    const decision = await evaluateWhatIf(ports, systemContext(settings.tenantId, "iot-authorizer", request.connectionMetadata.id), {
      device: { deviceId: device.id },
      destination: { fqdn: host },
      port: 8883,
      protocol: "tcp",
      ...(session ? { bearer: session.bearer } : {}),
      ...(country ? { country } : {}),
    });
    if (!decision.allow) return denyMqtt(principal);
  }
  return {
    isAuthenticated: true,
    principalId: principal,
    disconnectAfterInSeconds: device.state === "quarantined" ? refreshAfterInSeconds : 3600,
    refreshAfterInSeconds,
    policyDocuments: [topicPolicy(device)],
  };
}
