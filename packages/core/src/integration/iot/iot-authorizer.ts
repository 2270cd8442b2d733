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
 * old when the connection is made (older at IoT's refreshes of that connection, which send its CONNECT again). The key
 * must be the credential registered for that device (its SPKI SHA-256). Then:
 * revoked or suspended devices are refused; the tenant's policy must allow the device to reach
 * the MQTT endpoint (host, 8883/tcp) on its bearer; a quarantined device may only use its
 * quarantine topics; an active one gets its own topics and one topic tree per label.
 */
import { createHash, createPublicKey, verify } from "node:crypto";
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { systemContext } from "../../context.ts";
import type { Device } from "../../device/device.ts";
import { readDevice } from "../../device/store.ts";
import { sessionCountry } from "../../identity/session-country.ts";
import { evaluateWhatIf } from "../../policy/what-if.ts";
import type { Ports } from "../../ports.ts";
import {
  denyMqtt,
  iotArn,
  refreshAfterInSeconds,
  type IotPolicyDocument,
  type MqttAuthorizerRequest,
  type MqttAuthorizerResponse,
} from "./mqtt-authorizer.ts";

export * from "./mqtt-authorizer.ts";

export interface AuthorizerSettings {
  readonly tenantId: string;
  /** The MQTT endpoint's host name, the destination the tenant's policy must allow. */
  readonly mqttHost?: string;
}

const maxSkewSeconds = 300;
const safeSegment = /^[A-Za-z0-9._-]{1,64}$/;

export const mqttSigningInput = (clientId: string, seconds: number) => Buffer.from(`simroot-mqtt|v1|${clientId}|${seconds}`);

/** A connection's lifetime (IoT's `disconnectAfterInSeconds`) when its device is active. */
const connectionSeconds = 3600;

/** The seconds the password says it was signed at, or undefined when it is not a v1 password. */
function signedAt(password: string): number | undefined {
  const seconds = password.split(".")[1];
  return password.startsWith("v1.") && seconds && /^\d{1,12}$/.test(seconds) ? Number(seconds) : undefined;
}

/**
 * A connection IoT Core let in with this password, asked again at its refreshes with the same CONNECT (review 160: the
 * password, then more than five minutes old, was refused as stale, and every device was cut at its first refresh). Kept
 * by IoT's connection id, with the password's hash, for the connection's lifetime: a refresh is told from a new
 * connection replaying an old password by its id, which IoT Core gives each connection.
 */
const connectionKey = (connectionId: string) => ({ pk: `mqttconn#${connectionId}`, sk: "connection" });
const passwordHash = (password: string) => createHash("sha256").update(password).digest("base64url");

async function knownConnection(ports: Ports, tenantId: string, clientId: string, connectionId: string, password: string) {
  // Read eventually consistently (half a read unit at each 5-minute refresh): the item was written when the connection
  // was let in, at least 5 minutes before (a password is taken as stale only then).
  const { Item } = await ports.db.send(new GetCommand({ TableName: ports.tables.control, Key: connectionKey(connectionId) }));
  return Item?.tenantId === tenantId && Item.deviceId === clientId && Item.password === passwordHash(password);
}

/** Checks the password's signature against the device's registered IoT SAFE credential (its age is checked apart). */
function proves(device: Device, clientId: string, password: string): boolean {
  const [version, seconds, spki, signature] = password.split(".");
  if (version !== "v1" || !seconds || !spki || !signature || !/^\d{1,12}$/.test(seconds)) return false;
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
  const text = Buffer.from(mqtt.password, "base64").toString("utf8");
  const seconds = signedAt(text);
  if (seconds === undefined) return denyMqtt(principal);
  const age = ports.now().getTime() / 1000 - seconds;
  // Fresh (a new connection), or as old as a connection lives when IoT asks again about the connection it was given to.
  const fresh = Math.abs(age) <= maxSkewSeconds;
  if (!fresh && !(age > 0 && age <= connectionSeconds + maxSkewSeconds)) return denyMqtt(principal);
  if (!fresh && !(await knownConnection(ports, settings.tenantId, clientId, request.connectionMetadata.id, text)))
    return denyMqtt(principal);
  const stored = await readDevice(ports, settings.tenantId, clientId);
  if (!stored || !proves(stored.device, clientId, text)) return denyMqtt(principal);
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
  // Let in: the connection is remembered for its refreshes (one write a connection; DynamoDB's TTL drops it after).
  if (fresh)
    await ports.db.send(
      new PutCommand({
        TableName: ports.tables.control,
        Item: {
          ...connectionKey(request.connectionMetadata.id),
          tenantId: settings.tenantId,
          deviceId: clientId,
          password: passwordHash(text),
          expiresAt: seconds + connectionSeconds + 2 * maxSkewSeconds,
        },
      }),
    );
  return {
    isAuthenticated: true,
    principalId: principal,
    disconnectAfterInSeconds: device.state === "quarantined" ? refreshAfterInSeconds : connectionSeconds,
    refreshAfterInSeconds,
    policyDocuments: [topicPolicy(device)],
  };
}
