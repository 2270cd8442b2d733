/**
 * The push channel over MQTT: what a PEP follows in AWS (IoT Core, `mqtts://<endpoint>:443` with ALPN `mqtt`, through
 * the feed's custom authorizer) and locally (the feed hub's MQTT side, which asks the same authorizer). The PEP
 * connects with its feed API key as the password and a client id that starts with the key's id (core
 * feed/subscriber-authorizer.ts), subscribes to its tenant's topic and is woken by each notice. A notice is a hint: the
 * sync then polls and verifies the signed feed as always. Every (re)connection, once the subscription is granted,
 * counts as "notices may have been lost", so the sync polls once.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { connect, type MqttClient } from "mqtt";
import { feedClientId, feedTopic } from "@simroot/core/feed/notifier";
import { noticeTrigger, type FeedTrigger } from "./push.ts";

export interface MqttTriggerOptions {
  /** `mqtts://<your iot:Data-ATS endpoint>:443` in AWS; the local control plane prints its `mqtt://127.0.0.1:<port>`. */
  readonly url: string;
  /** The PEP's feed API key (role `pep`). */
  readonly apiKey: string;
  /** The IoT Core custom authorizer (the deployment's `feedAuthorizer` output); none locally. */
  readonly authorizer?: string;
  /** This PEP's part of its client id (default: host name and a random part): two PEPs never share one. */
  readonly clientSuffix?: string;
  /** Told when the broker refuses the connection or the subscription (the sync then learns changes by its idle poll). */
  readonly onError?: (error: Error) => void;
}

const suffixOf = () =>
  `${
    hostname()
      .replace(/[^A-Za-z0-9_-]/g, "")
      .slice(0, 40) || "pep"
  }-${randomBytes(4).toString("hex")}`;

export function mqttTrigger(options: MqttTriggerOptions): FeedTrigger {
  const clientId = feedClientId(options.apiKey, options.clientSuffix ?? suffixOf());
  const username = options.authorizer ? `simroot-pep?x-amz-customauthorizer-name=${encodeURIComponent(options.authorizer)}` : "simroot-pep";
  return noticeTrigger((tenantId, handlers) => {
    const topic = feedTopic(tenantId);
    const client: MqttClient = connect(options.url, {
      clientId,
      username,
      password: options.apiKey,
      protocolVersion: 4,
      clean: true,
      // IoT Core bills keep-alives as messages; a silent channel is caught by the sync's idle poll anyway.
      keepalive: 300,
      reconnectPeriod: 2_000,
      connectTimeout: 10_000,
      ...(options.url.startsWith("mqtts:") ? { ALPNProtocols: ["mqtt"] } : {}),
    });
    client.on("connect", () => {
      client.subscribe(topic, { qos: 1 }, (error, granted) => {
        const refused = error ?? (granted?.[0]?.qos === 128 ? new Error(`the broker refused the subscription to ${topic}`) : undefined);
        if (refused) return options.onError?.(refused);
        handlers.onConnected();
      });
    });
    client.on("message", (received, payload) => {
      if (received === topic) handlers.onMessage(payload.toString("utf8"));
    });
    client.on("error", (error) => options.onError?.(error));
    return { close: () => void client.end(true) };
  });
}
