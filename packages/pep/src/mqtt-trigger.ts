/**
 * The push channel over MQTT: what a PEP follows in AWS (IoT Core, `mqtts://<endpoint>:443` with ALPN `mqtt`, through
 * the feed's custom authorizer) and locally (the feed hub's MQTT side, which asks the same authorizer). The PEP
 * connects with its feed API key as the password and a client id that starts with the key's id (core
 * feed/subscriber-authorizer.ts), subscribes to its tenant's topic and is woken by each notice. A notice is a hint: the
 * sync then polls and verifies the signed feed as always. Every connection whose subscription is granted, the first
 * included, counts as "notices may have been lost" (they were, while it was down or not yet subscribed), so the sync
 * polls once.
 *
 * Reconnection is this module's, not MQTT.js's (which gives up for good after one refused CONNACK): a connection that
 * drops or is refused is opened again after a jittered, doubling delay, long when the broker said the key is not
 * authorized (a revoked key must not invoke the authorizer every few seconds), short otherwise; a connection that
 * lasts a minute resets it. Until then the sync still renews its head by polling, so it learns every change within its idle interval.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { connect, type MqttClient } from "mqtt";
import { feedBareTopic, feedClientId, feedTopic } from "@simroot/core/feed/notifier";
import { noticeTrigger, type FeedTrigger } from "./push.ts";

export interface MqttTriggerOptions {
  /** `mqtts://<your iot:Data-ATS endpoint>:443` in AWS; the local control plane prints its `mqtt://127.0.0.1:<port>`. */
  readonly url: string;
  /** The PEP's feed API key (role `pep`). */
  readonly apiKey: string;
  /** The IoT Core custom authorizer (the deployment's `feedAuthorizer` output); none locally. */
  readonly authorizer?: string;
  /** This PEP's name in its client id (default: the host name); a random part follows, so two PEPs never share one. */
  readonly name?: string;
  /** Told when the broker refuses the connection or the subscription (the sync then learns changes by its idle poll). */
  readonly onError?: (error: Error) => void;
  /** First reconnection delays, ms: after a drop or a refusal by an unavailable broker, and after "not authorized". */
  readonly retryMs?: { readonly dropped: number; readonly refused: number; readonly max: number };
  /**
   * Follow the bare notices (the version alone), as a PEP narrowed to a selector does: the whole tenant's deltas on the
   * other topic are of no use to it, whose view is its selector's. A key bound to a selector may follow no other topic:
   * refused the one with deltas, the trigger follows the bare one from then on (review 99).
   */
  readonly bare?: boolean;
}

/** The client id's suffix: the name as far as a client id may carry it, then a random part. */
const suffixOf = (name: string) => `${name.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 40) || "pep"}-${randomBytes(4).toString("hex")}`;
const defaultRetry = { dropped: 1_000, refused: 30_000, max: 300_000 };
/** CONNACK codes that say the credentials will not do (bad user name or password, not authorized). */
const refusals = new Set([4, 5, 134, 135]);

export function mqttTrigger(options: MqttTriggerOptions): FeedTrigger {
  const clientId = feedClientId(options.apiKey, suffixOf(options.name ?? hostname()));
  const username = options.authorizer ? `simroot-pep?x-amz-customauthorizer-name=${encodeURIComponent(options.authorizer)}` : "simroot-pep";
  const retry = options.retryMs ?? defaultRetry;
  return noticeTrigger((tenantId, handlers) => {
    let topic = options.bare ? feedBareTopic(tenantId) : feedTopic(tenantId);
    let closed = false;
    let client: MqttClient | undefined;
    let timer: NodeJS.Timeout | undefined;
    let lasted: NodeJS.Timeout | undefined;
    let failures = 0;
    /** Whether the broker's last answer said the key is not authorized. */
    let refused = false;
    const again = () => {
      if (closed || timer) return;
      const base = refused ? retry.refused : retry.dropped;
      const ceiling = Math.min(retry.max, base * 2 ** Math.min(failures, 16));
      failures++;
      timer = setTimeout(
        () => {
          timer = undefined;
          open();
        },
        ceiling / 2 + Math.random() * (ceiling / 2),
      );
      timer.unref();
    };
    const open = () => {
      if (closed) return;
      refused = false;
      const current = connect(options.url, {
        clientId,
        username,
        password: options.apiKey,
        protocolVersion: 4,
        clean: true,
        // IoT Core bills keep-alives as messages; a silent channel is caught by the sync's idle poll anyway.
        keepalive: 300,
        // Reconnection and resubscription are handled here (see above).
        reconnectPeriod: 0,
        resubscribe: false,
        connectTimeout: 10_000,
        ...(options.url.startsWith("mqtts:") ? { ALPNProtocols: ["mqtt"] } : {}),
      });
      client = current;
      const follow = () =>
        current.subscribe(topic, { qos: 1 }, (error, granted) => {
          // Closed meanwhile (by us, or superseded): its answer, or the "connection closed" that fails it, is no news.
          if (closed || client !== current) return;
          const refusedQos =
            granted?.[0]?.qos === 128 || (error as { packet?: { granted?: number[] } } | null)?.packet?.granted?.[0] === 128;
          // A key bound to a selector is refused the deltas: it follows the bare notices instead.
          if (refusedQos && topic === feedTopic(tenantId)) {
            topic = feedBareTopic(tenantId);
            follow();
            return;
          }
          const denied = error ?? (refusedQos ? new Error(`the broker refused the subscription to ${topic}`) : undefined);
          if (denied) {
            // Subscribed to nothing: drop the connection and try again later (the key may be given rights again).
            refused = true;
            options.onError?.(denied);
            current.end(true);
            return;
          }
          // The backoff starts over only once a connection has lasted: a broker that drops each one right after the
          // subscription is granted (a duplicate client id) is not asked again every second forever.
          clearTimeout(lasted);
          lasted = setTimeout(() => (failures = 0), 60_000).unref();
          handlers.onConnected();
        });
      current.on("connect", () => follow());
      current.on("message", (received, payload) => {
        // As received: a large notice is gzipped (core feed/notifier.ts `noticePayload`).
        if (received === topic) handlers.onMessage(payload);
      });
      current.on("error", (error) => {
        if (refusals.has((error as { code?: unknown }).code as number)) refused = true;
        options.onError?.(error);
      });
      current.on("close", () => {
        if (client !== current) return;
        clearTimeout(lasted);
        current.end(true);
        again();
      });
    };
    open();
    return {
      close() {
        closed = true;
        clearTimeout(timer);
        clearTimeout(lasted);
        client?.end(true);
      },
    };
  });
}
