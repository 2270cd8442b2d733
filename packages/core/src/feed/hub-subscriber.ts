/**
 * Subscribes to one topic of the local feed hub (packages/local/src/feed-hub.ts): a
 * server-sent-events stream on `GET /topics/<topic>`, standing in for an MQTT subscription to
 * AWS IoT Core. Reconnects with backoff for as long as it is not closed; every (re)connection
 * is reported, since notices may have been missed while it was down.
 */
import http from "node:http";

export interface HubSubscription {
  close(): void;
}

export interface HubSubscriberOptions {
  /** Each message's payload, as published. */
  readonly onMessage: (payload: string) => void;
  /** The stream is (re)established: anything published while it was down was missed. */
  readonly onConnected?: () => void;
  readonly retryMs?: number;
}

export function subscribeHub(hubUrl: string, topic: string, options: HubSubscriberOptions): HubSubscription {
  let closed = false;
  let request: http.ClientRequest | undefined;
  let retry: NodeJS.Timeout | undefined;
  const retryMs = options.retryMs ?? 500;
  const connect = () => {
    if (closed) return;
    const url = new URL(`/topics/${encodeURIComponent(topic)}`, hubUrl);
    request = http.get(url, { headers: { accept: "text/event-stream" } });
    request.once("error", () => reconnect());
    request.once("response", (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        return reconnect();
      }
      options.onConnected?.();
      response.setEncoding("utf8");
      let buffered = "";
      response.on("data", (chunk: string) => {
        buffered += chunk;
        let end: number;
        while ((end = buffered.indexOf("\n\n")) >= 0) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = event
            .split("\n")
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).trimStart());
          if (data.length > 0) options.onMessage(data.join("\n"));
        }
        // A stream that sends one endless line is not a hub: drop it.
        if (buffered.length > 64 * 1024) response.destroy();
      });
      response.once("close", () => reconnect());
    });
  };
  const reconnect = () => {
    request?.destroy();
    request = undefined;
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      connect();
    }, retryMs);
    retry.unref();
  };
  connect();
  return {
    close() {
      closed = true;
      clearTimeout(retry);
      request?.destroy();
    },
  };
}
