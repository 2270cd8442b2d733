/**
 * Live changes: reads `/v1/live` (server-sent events) with fetch, since EventSource cannot send
 * the Authorization header; reconnects with Last-Event-ID so no change is missed.
 */
import { apiKey } from "./api.ts";

export interface LiveChange {
  version: number;
  changes: { kind: string; key: string }[];
  /** The stream could not resume where it was: everything may have changed. */
  reset?: boolean;
}

export type LiveStatus = "connecting" | "live" | "offline";

export function subscribeLive(onChange: (change: LiveChange) => void, onStatus: (status: LiveStatus) => void): () => void {
  let stopped = false;
  let lastId: string | undefined;
  let controller = new AbortController();

  async function connect() {
    while (!stopped) {
      controller = new AbortController();
      try {
        onStatus("connecting");
        const response = await fetch("/v1/live?wait=20", {
          headers: {
            authorization: `Bearer ${apiKey() ?? ""}`,
            accept: "text/event-stream",
            ...(lastId ? { "last-event-id": lastId } : {}),
          },
          signal: controller.signal,
        });
        // A refused key is not retried (every 2 s, a tab left open with a revoked key spent its address's failed
        // authentications and locked out the PEPs behind the same NAT: review 91): the console signs out.
        if (response.status === 401) {
          stopped = true;
          window.dispatchEvent(new CustomEvent("simroot:unauthorized"));
          return;
        }
        if (!response.ok || !response.body) throw new Error(`live: HTTP ${response.status}`);
        onStatus("live");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const fields = new Map<string, string>();
            for (const line of block.split("\n")) {
              const colon = line.indexOf(":");
              if (colon <= 0) continue;
              fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
            }
            if (fields.has("id")) lastId = fields.get("id");
            const event = fields.get("event");
            const data = fields.get("data");
            if (event === "change" && data) onChange(JSON.parse(data) as LiveChange);
            if (event === "reset" && data) onChange({ version: (JSON.parse(data) as LiveChange).version, changes: [], reset: true });
          }
        }
      } catch {
        if (stopped) return;
        onStatus("offline");
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      }
    }
  }
  void connect();
  return () => {
    stopped = true;
    controller.abort();
  };
}
