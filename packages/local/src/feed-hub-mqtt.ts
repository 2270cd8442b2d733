/**
 * The feed hub's MQTT side: what AWS IoT Core does for PEPs on the feed's push channel, on loopback. A real MQTT broker
 * (aedes) that asks a custom authorizer about every CONNECT with the request IoT Core sends its authorizer Lambda
 * (`protocolData.mqtt` with the password base64), then holds each client to the policy documents it returned, as IoT
 * Core does: `iot:Connect` on its client id, `iot:Subscribe` on each topic filter (a refused filter gets a SUBACK
 * failure), `iot:Publish` on each topic it publishes to (refused: the client is disconnected), `iot:Receive` on each
 * message delivered to it. It asks again every `refreshAfterInSeconds` and disconnects a client the answer refuses,
 * and at `disconnectAfterInSeconds`. Notices published through the hub's data plane (`POST /topics/...`) reach the
 * broker's subscribers too.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import { Aedes, type Client } from "aedes";
import type { IotPolicyDocument, MqttAuthorizerRequest, MqttAuthorizerResponse } from "@simroot/core";

export type MqttAuthorizer = (request: MqttAuthorizerRequest) => Promise<MqttAuthorizerResponse>;

export interface MqttSideOptions {
  readonly authorize: MqttAuthorizer;
  readonly hostname: string;
  readonly port?: number;
  /** Overrides the authorizer's `refreshAfterInSeconds` (tests; IoT's own floor is 300 s). */
  readonly refreshSeconds?: number;
}

export interface MqttSide {
  readonly url: string;
  publish(topic: string, payload: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** `*` any run of characters, `?` one, as IAM matches resources; neither crosses a character of `within`. */
const glob = (pattern: string, within = "") => {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  const any = within ? `[^${within}]` : ".";
  return new RegExp(`^${escaped.replace(/\*/g, `${any}*`).replace(/\?/g, any)}$`);
};

/** An ARN pattern against an ARN: partition, service, region and account segment by segment, then the resource. */
function arnMatches(pattern: string, arn: string): boolean {
  const split = (text: string) => {
    const parts = text.split(":");
    return [...parts.slice(0, 5), parts.slice(5).join(":")];
  };
  const [wanted, given] = [split(pattern), split(arn)];
  return wanted.length === 6 && wanted.every((part, index) => glob(part, index < 5 ? ":" : "").test(given[index] ?? ""));
}

/** Whether the documents allow `action` on `resource`: an Allow matches and no Deny does. */
export function policyAllows(documents: readonly IotPolicyDocument[], action: string, kind: string, name: string): boolean {
  const resource = `arn:aws:iot:local:local:${kind}/${name}`;
  const matches = (effect: "Allow" | "Deny") =>
    documents.some((document) =>
      document.Statement.some(
        (statement) =>
          statement.Effect === effect &&
          [statement.Action].flat().some((pattern) => glob(pattern).test(action)) &&
          [statement.Resource].flat().some((pattern) => arnMatches(pattern, resource)),
      ),
    );
  return !matches("Deny") && matches("Allow");
}

export async function startMqttSide(options: MqttSideOptions): Promise<MqttSide> {
  /** Each connected client's policy, with its next authorizer refresh and its forced disconnect. */
  interface Session {
    documents: IotPolicyDocument[];
    refresh: NodeJS.Timeout;
    disconnect: NodeJS.Timeout;
  }
  const sessions = new Map<Client, Session>();
  const end = (session: Session | undefined) => {
    clearTimeout(session?.refresh);
    clearTimeout(session?.disconnect);
  };
  const ask = (client: Client, username: string | undefined, password: Buffer | undefined) =>
    options.authorize({
      protocols: ["tls", "mqtt"],
      protocolData: {
        tls: { serverName: options.hostname },
        mqtt: {
          clientId: client.id,
          ...(username === undefined ? {} : { username }),
          ...(password === undefined ? {} : { password: password.toString("base64") }),
        },
      },
      connectionMetadata: { id: randomUUID() },
    });
  const refused = (code: 4 | 5 | 3) => Object.assign(new Error("not authorized"), { returnCode: code });
  const broker = await Aedes.createBroker({
    authenticate(client, username, password, done) {
      ask(client, username, password).then(
        (answer) => {
          if (!answer.isAuthenticated || !policyAllows(answer.policyDocuments, "iot:Connect", "client", client.id)) {
            return done(refused(5), false);
          }
          // Gone while the authorizer answered: nothing to hold (no disconnect event would clean it up).
          if (client.closed) return done(refused(3), false);
          const refreshMs = (options.refreshSeconds ?? answer.refreshAfterInSeconds) * 1000;
          const refresh = () => {
            if (sessions.get(client) !== session) return;
            ask(client, username, password).then(
              (again) => {
                if (!again.isAuthenticated) return client.close();
                session.documents = again.policyDocuments;
                session.refresh = setTimeout(refresh, refreshMs).unref();
              },
              // The authorizer failing is not a refusal: IoT keeps the connection and asks again.
              () => (session.refresh = setTimeout(refresh, refreshMs).unref()),
            );
          };
          const session: Session = {
            documents: answer.policyDocuments,
            refresh: setTimeout(refresh, refreshMs).unref(),
            disconnect: setTimeout(() => client.close(), answer.disconnectAfterInSeconds * 1000).unref(),
          };
          sessions.set(client, session);
          done(null, true);
        },
        // The authorizer failed (its store is down): the CONNECT fails as "server unavailable", as IoT's would.
        () => done(refused(3), false),
      );
    },
    authorizeSubscribe(client, subscription, done) {
      const documents = sessions.get(client)?.documents ?? [];
      done(null, policyAllows(documents, "iot:Subscribe", "topicfilter", subscription.topic) ? subscription : null);
    },
    authorizePublish(client, packet, done) {
      const documents = (client && sessions.get(client)?.documents) ?? [];
      done(policyAllows(documents, "iot:Publish", "topic", packet.topic) ? null : new Error("not authorized to publish"));
    },
    authorizeForward(client, packet) {
      const documents = sessions.get(client)?.documents ?? [];
      return policyAllows(documents, "iot:Receive", "topic", packet.topic) ? packet : null;
    },
  });
  broker.on("clientDisconnect", (client) => {
    end(sessions.get(client));
    sessions.delete(client);
  });
  const server: Server = createServer((socket) => broker.handle(socket));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, options.hostname, resolve);
    });
  } catch (error) {
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      code === "EADDRINUSE"
        ? `the feed hub's MQTT port ${options.port} (SIMROOT_FEED_MQTT_PORT) is in use: choose another, or stop what holds it`
        : `the feed hub's MQTT side could not listen on ${options.hostname}:${options.port ?? 0}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const { port } = server.address() as AddressInfo;
  return {
    url: `mqtt://${options.hostname}:${port}`,
    publish: (topic, payload) =>
      new Promise((resolve, reject) =>
        broker.publish({ cmd: "publish", topic, payload, qos: 1, retain: false, dup: false }, (error) =>
          error ? reject(error) : resolve(),
        ),
      ),
    close: async () => {
      for (const session of sessions.values()) end(session);
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
