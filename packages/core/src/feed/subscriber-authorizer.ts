/**
 * Who may follow a tenant's feed notices on the push channel: the custom authorizer of AWS IoT
 * Core for PEPs (locally, the feed hub asks it the same question: packages/local/src/feed-hub.ts).
 * A PEP connects over MQTT with its feed API key as the password and a client id that starts
 * with the key's id (`<key id>` or `<key id>.<suffix>`, so that several PEPs sharing a key each
 * have their own connection). A valid key of a role that may read the feed (`pep`, `admin`, as
 * `GET /v1/feed`) gets a policy to receive its own tenant's topic, `simroot/<tenant>/feed`, and
 * nothing else: no publishing (notices come from the control plane's IoT Publish, with its role),
 * no other tenant's topic. IoT asks again every 5 minutes: a revoked key is disconnected then.
 *
 * A notice says "the head moved to V", and on `simroot/<tenant>/feed` carries the change as the
 * whole tenant's signed delta; the PEP still verifies it, or fetches the signed feed with the same
 * key, checked on every request. A pep key bound to a selector gets the bare topic only,
 * `simroot/<tenant>/feed/bare`, whose notices carry the version alone: the delta names every
 * site's devices and addresses (review 98: a bound key read them there), and the version is the
 * one every response of the key's narrowed feed signs anyway. Other keys get both: a PEP narrowed
 * to a selector follows the bare one whatever its key (review 99).
 *
 * Failed authentications are counted per key id across instances (access/auth-failures.ts): IoT Core names no source
 * address to a custom authorizer, and each wrong secret for a real key was a consistent read of it, unbounded (review
 * 137). Past the limit a wrong secret is refused without reading the key again or counting it (the rest of the window);
 * its own secret still connects.
 */
import { authenticate, type Role } from "../access/api-key.ts";
import { type AuthFailureLimit, countKeyFailure, keyFailuresSpent } from "../access/auth-failures.ts";
import { SimrootError } from "../error.ts";
import { denyMqtt, iotArn, type MqttAuthorizerRequest, type MqttAuthorizerResponse } from "../integration/iot/mqtt-authorizer.ts";
import type { Ports } from "../ports.ts";
import { feedBareTopic, feedTopic } from "./notifier.ts";

/** The roles `GET /v1/feed` serves (api routes/feed.ts). */
export const feedSubscriberRoles: readonly Role[] = ["pep", "admin"];

/** IoT's bounds for both durations are 300..86,400 seconds. */
const refreshAfterInSeconds = 300;
const disconnectAfterInSeconds = 86_400;
const clientIdPattern = /^(key_[0-9A-HJKMNP-TV-Z]{26})(?:\.[A-Za-z0-9_-]{1,64})?$/;
/** A tenant id is one plain topic segment: `+`, `#` or `/` would widen the grant. */
const plainSegment = /^[A-Za-z0-9_-]{1,128}$/;

/** What the authorizer reads: the API keys' records (the control table); and where it counts failures (the clock's window). */
export type FeedKeyStore = Pick<Ports, "db" | "tables" | "now">;

export async function authorizeFeedSubscriber(
  ports: FeedKeyStore,
  request: MqttAuthorizerRequest,
  authFailures: AuthFailureLimit,
): Promise<MqttAuthorizerResponse> {
  const mqtt = request.protocolData.mqtt;
  const clientId = mqtt?.clientId ?? "";
  const principal = clientId.replace(/[^A-Za-z0-9]/g, "").slice(0, 128) || "unknown";
  const keyId = clientIdPattern.exec(clientId)?.[1];
  if (!keyId || !mqtt?.password) return denyMqtt(principal);
  const token = Buffer.from(mqtt.password, "base64").toString("utf8");
  // The client id names the key the password is: a key cannot connect as another's PEP.
  if (!token.startsWith(`sr_${keyId}_`)) return denyMqtt(principal);
  let tenantId: string;
  let bound: boolean;
  const spent = keyFailuresSpent(ports, keyId, authFailures);
  try {
    const principalOfKey = await authenticate(ports, token, { readAgain: !spent });
    if (!feedSubscriberRoles.includes(principalOfKey.role)) return denyMqtt(principal);
    tenantId = principalOfKey.tenantId;
    bound = principalOfKey.selector !== undefined;
  } catch (error) {
    // An unknown or revoked key is refused; the store failing is not a refusal of the key (IoT then fails the CONNECT).
    if (!(error instanceof SimrootError && error.code === "auth.invalid_key")) throw error;
    // Counted before the answer leaves (a frozen Lambda would lose it), until the limit: past it, counting was a write
    // for each refusal the limit spared a read. A count the store refused refuses nothing more.
    if (!spent) await countKeyFailure(ports, keyId, authFailures).catch(() => undefined);
    return denyMqtt(principal);
  }
  if (!plainSegment.test(tenantId)) return denyMqtt(principal);
  const topics = bound ? [feedBareTopic(tenantId)] : [feedTopic(tenantId), feedBareTopic(tenantId)];
  return {
    isAuthenticated: true,
    principalId: principal,
    disconnectAfterInSeconds,
    refreshAfterInSeconds,
    policyDocuments: [
      {
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Action: "iot:Connect", Resource: iotArn("client", clientId) },
          { Effect: "Allow", Action: "iot:Subscribe", Resource: topics.map((topic) => iotArn("topicfilter", topic)) },
          { Effect: "Allow", Action: "iot:Receive", Resource: topics.map((topic) => iotArn("topic", topic)) },
        ],
      },
    ],
  };
}
