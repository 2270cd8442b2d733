/**
 * The laptop's AWS IoT Core, for the feed's push channel only: it answers the IoT data plane's
 * Publish request (`POST /topics/<topic>?qos=<0|1>`, the body is the payload; what
 * `@aws-sdk/client-iot-data-plane` sends) and fans each message out to the subscribers of
 * that topic, which hold a server-sent-events stream (`GET /topics/<topic>`, in place of an
 * MQTT subscription). Several local instances that share nothing else publish to and
 * subscribe through one hub, as Lambdas and PEPs do through IoT Core. Loopback only. The
 * server-sent-events side carries every tenant's whole deltas, so it serves only those given the hub's secret, which
 * `subscriberUrl` carries as its user name and password (HTTP Basic): the control plane's instances (review 157: it
 * served any process on the machine any tenant's topic). PEPs follow the MQTT side, which authorizes each. Publishing
 * asks no credential, as notices are only hints (every instance and PEP reads the signed feed they point at). With an
 * `authorize` function the hub also is an MQTT broker (feed-hub-mqtt.ts) that decides every
 * CONNECT with it as IoT Core asks its custom authorizer: PEPs follow their tenant's notices
 * over MQTT there, with the client and the authorizer they use against IoT Core. Nothing is retained.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { noticeText } from "@simroot/core/feed/notifier";
import { startMqttSide, type MqttAuthorizer, type MqttSide } from "./feed-hub-mqtt.ts";

export interface FeedHub {
  /** Where the IoT data plane's Publish is answered (no credential). */
  readonly url: string;
  /** `url` with the hub's secret as its user name and password: what follows a topic (an instance's hub URL). */
  readonly subscriberUrl: string;
  /** `mqtt://host:port` when the hub was given an authorizer. */
  readonly mqttUrl: string | undefined;
  /** Subscribers per topic, and messages published. */
  stats(): { subscribers: number; published: number };
  close(): Promise<void>;
}

/** IoT Core's limit on a message's payload. */
const maxPayloadBytes = 128 * 1024;
const heartbeatMs = 15_000;
/** The user name of `subscriberUrl` (its password is the hub's secret). */
const subscriberName = "instance";

export interface FeedHubOptions {
  readonly port?: number;
  readonly hostname?: string;
  /** Decides MQTT CONNECTs (IoT Core's custom authorizer request and answer); without it the hub speaks no MQTT. */
  readonly authorize?: MqttAuthorizer;
  readonly mqttPort?: number;
  /** Overrides the authorizer's refresh interval (tests). */
  readonly mqttRefreshSeconds?: number;
}

export async function startFeedHub(options: FeedHubOptions = {}): Promise<FeedHub> {
  const topics = new Map<string, Set<ServerResponse>>();
  const hostname = options.hostname ?? "127.0.0.1";
  const mqtt: MqttSide | undefined = options.authorize
    ? await startMqttSide({
        authorize: options.authorize,
        hostname,
        ...(options.mqttPort === undefined ? {} : { port: options.mqttPort }),
        ...(options.mqttRefreshSeconds === undefined ? {} : { refreshSeconds: options.mqttRefreshSeconds }),
      })
    : undefined;
  let published = 0;
  const secret = randomBytes(24).toString("base64url");
  const expected = Buffer.from(`Basic ${Buffer.from(`${subscriberName}:${secret}`).toString("base64")}`);
  const mayFollow = (request: IncomingMessage) => {
    const given = Buffer.from(request.headers.authorization ?? "");
    return given.length === expected.length && timingSafeEqual(given, expected);
  };
  const fail = (response: ServerResponse, status: number, type: string, message: string) => {
    response.writeHead(status, { "content-type": "application/json", "x-amzn-errortype": type });
    response.end(JSON.stringify({ message }));
  };
  const publish = async (request: IncomingMessage, response: ServerResponse, topic: string) => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxPayloadBytes) return fail(response, 413, "RequestEntityTooLargeException", "Payload exceeds 128 KB");
      chunks.push(chunk);
    }
    const payload = Buffer.concat(chunks);
    published++;
    // Server-sent events carry text: a gzipped notice (core feed/notifier.ts `noticePayload`) goes out inflated there,
    // and as it was published to MQTT subscribers, as IoT Core delivers it. SSE data lines cannot hold a newline: the
    // text is sent one data line per line.
    const text = noticeText(payload);
    if (text !== undefined) {
      const frame = `${text
        .split("\n")
        .map((line) => `data: ${line}`)
        .join("\n")}\n\n`;
      for (const subscriber of topics.get(topic) ?? []) subscriber.write(frame);
    }
    await mqtt?.publish(topic, payload);
    response.writeHead(200, { "content-type": "application/json" });
    response.end("{}");
  };
  const subscribe = (request: IncomingMessage, response: ServerResponse, topic: string) => {
    if (!mayFollow(request)) {
      response.setHeader("www-authenticate", 'Basic realm="simroot feed hub"');
      return fail(response, 401, "UnauthorizedException", "Following a topic takes the hub's secret (its subscriber URL)");
    }
    let subscribers = topics.get(topic);
    if (!subscribers) topics.set(topic, (subscribers = new Set()));
    const set = subscribers;
    set.add(response);
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
    response.write(": subscribed\n\n");
    const heartbeat = setInterval(() => response.write(": ping\n\n"), heartbeatMs);
    request.socket.setNoDelay(true);
    response.once("close", () => {
      clearInterval(heartbeat);
      set.delete(response);
      if (set.size === 0 && topics.get(topic) === set) topics.delete(topic);
    });
  };
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://hub");
    const match = /^\/topics\/([^/]+)$/.exec(url.pathname);
    if (!match) return fail(response, 404, "ResourceNotFoundException", "No such resource");
    const topic = decodeURIComponent(match[1]!);
    if (request.method === "POST") return void publish(request, response, topic).catch(() => response.destroy());
    if (request.method === "GET") return subscribe(request, response, topic);
    fail(response, 405, "MethodNotAllowedException", "Use POST to publish, GET to subscribe");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, hostname, resolve);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${hostname}:${address.port}`,
    subscriberUrl: `http://${subscriberName}:${secret}@${hostname}:${address.port}`,
    mqttUrl: mqtt?.url,
    stats: () => ({ subscribers: [...topics.values()].reduce((sum, set) => sum + set.size, 0), published }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const set of topics.values()) for (const subscriber of set) subscriber.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => mqtt?.close()),
  };
}
