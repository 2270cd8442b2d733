/**
 * How the sync client talks HTTP. A PEP makes one long poll after another for as long as it
 * runs, so the default is node:http(s) on a keep-alive agent of its own: far less CPU per poll
 * than WHATWG fetch (no Request/Response objects, web streams or composite abort signals),
 * which is what lets one small edge box follow a busy tenant. An injected `fetch` (tests, a
 * proxying client) goes through `fetchGet`.
 */
import http from "node:http";
import https from "node:https";
import { checkBodyBytes, feedLimits, parseFeedJson, type FeedLimits } from "./limits.ts";

export interface FeedReply {
  readonly status: number;
  header(name: string): string | undefined;
  json(): Promise<unknown>;
  text(): Promise<string>;
  /** Drops a body the caller does not need (the connection stays reusable). */
  discard(): Promise<void>;
  /** A `text/event-stream` body, event by event; leaving the loop early closes the connection. */
  events(): AsyncIterable<StreamEvent>;
}

/** One server-sent event (comments and `id` lines are skipped: the data carries its own version). */
export interface StreamEvent {
  readonly event: string;
  readonly data: string;
}

/**
 * Splits server-sent events out of text chunks (WHATWG HTML, "event stream interpretation", for `event` and `data`).
 * Each character is examined once: a line is looked for in the new chunk only, and an unfinished line or event is kept
 * as its parts, joined once it ends (review 88: the whole buffer was searched again at every chunk, and copied after
 * every event, so an event that came in many chunks took time quadratic in its length).
 */
export async function* parseEvents(chunks: AsyncIterable<string>, limits: FeedLimits = feedLimits): AsyncGenerator<StreamEvent> {
  const parser = new EventParser(limits);
  for await (const chunk of chunks) yield* parser.push(chunk);
}

/** The event-stream parser's state between chunks. */
class EventParser {
  /** The parts of the line not ended yet. */
  #line: string[] = [];
  #event = "message";
  #data: string[] = [];
  /** Characters of the event so far (its lines and the line not ended), bounded by `maxBodyBytes`. */
  #size = 0;
  /** The last chunk ended with a CR: a LF that starts the next one ends no second line. */
  #afterCr = false;
  readonly #limits: FeedLimits;

  constructor(limits: FeedLimits) {
    this.#limits = limits;
  }

  push(chunk: string): StreamEvent[] {
    const events: StreamEvent[] = [];
    let start = this.#afterCr && chunk.startsWith("\n") ? 1 : 0;
    this.#afterCr = false;
    // The next CR and LF at or after `start`, each looked for again only once passed (-1: none left in the chunk).
    let cr = chunk.indexOf("\r", start);
    let lf = chunk.indexOf("\n", start);
    while (cr >= 0 || lf >= 0) {
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      this.#grow(end - start);
      this.#line.push(chunk.slice(start, end));
      const event = this.#endLine();
      if (event) events.push(event);
      start = end + 1;
      if (end === cr) {
        if (end + 1 === chunk.length) this.#afterCr = true;
        else if (lf === end + 1) start++;
      }
      if (cr >= 0 && cr < start) cr = chunk.indexOf("\r", start);
      if (lf >= 0 && lf < start) lf = chunk.indexOf("\n", start);
    }
    if (start < chunk.length) {
      this.#grow(chunk.length - start);
      this.#line.push(chunk.slice(start));
    }
    return events;
  }

  #grow(characters: number) {
    this.#size += characters;
    checkBodyBytes(this.#size, this.#limits);
  }

  /** Takes the line ended; an empty line dispatches the event (when it has data). */
  #endLine(): StreamEvent | undefined {
    const line = this.#line.length === 1 ? this.#line[0]! : this.#line.join("");
    this.#line = [];
    if (line === "") {
      const event = this.#data.length > 0 ? { event: this.#event, data: this.#data.join("\n") } : undefined;
      this.#event = "message";
      this.#data = [];
      this.#size = 0;
      return event;
    }
    const colon = line.indexOf(":");
    if (colon === 0) return undefined;
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(line[colon + 1] === " " ? colon + 2 : colon + 1);
    if (field === "event") this.#event = value;
    else if (field === "data") this.#data.push(value);
    return undefined;
  }
}

export interface FeedGetRequest {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
}

export type FeedGet = (request: FeedGetRequest) => Promise<FeedReply>;

/** An injected fetch, its bodies read within the limits (`limits.ts`) as node:http's are. */
export function fetchGet(fetchImpl: typeof fetch, bounds: Partial<FeedLimits> = {}): FeedGet {
  const limits = { ...feedLimits, ...bounds };
  return async ({ url, headers, signal, timeoutMs }) => {
    const response = await fetchImpl(url, { headers, signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) });
    let body: Promise<Buffer> | undefined;
    const read = () => (body ??= bounded(response, limits));
    return {
      status: response.status,
      header: (name) => response.headers.get(name) ?? undefined,
      json: async () => parseFeedJson(await read(), limits),
      text: async () => (await read()).toString("utf8"),
      discard: async () => void (await response.body?.cancel()),
      events: () => parseEvents(decoded(response.body), limits),
    };
  };
}

/** A fetch response's body, refused (and cancelled) once it is declared or read past `maxBodyBytes`. */
async function bounded(response: Response, limits: FeedLimits): Promise<Buffer> {
  const reader = response.body?.getReader();
  if (!reader) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    checkBodyBytes(Number(response.headers.get("content-length") ?? 0), limits);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return Buffer.concat(chunks);
      size += value.byteLength;
      checkBodyBytes(size, limits);
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
}

async function* decoded(body: ReadableStream<Uint8Array> | null): AsyncGenerator<string> {
  if (!body) return;
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** node:http(s) with keep-alive; one agent per client, so each PEP keeps its own connection. */
export function nodeGet(bounds: Partial<FeedLimits> = {}): FeedGet {
  const limits = { ...feedLimits, ...bounds };
  const agents = { "http:": new http.Agent({ keepAlive: true }), "https:": new https.Agent({ keepAlive: true }) };
  return ({ url, headers, signal, timeoutMs }) =>
    new Promise<FeedReply>((resolve, reject) => {
      const target = new URL(url);
      const client = target.protocol === "https:" ? https : http;
      const agent = target.protocol === "https:" ? agents["https:"] : agents["http:"];
      if (signal.aborted) return reject(signal.reason);
      const request = client.get(target, { agent, headers, signal });
      const timer = setTimeout(() => request.destroy(new Error(`The feed did not answer within ${timeoutMs} ms`)), timeoutMs);
      request.once("close", () => clearTimeout(timer));
      request.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      request.once("response", (response) => {
        const header = (name: string) => {
          const value = response.headers[name.toLowerCase()];
          return Array.isArray(value) ? value.join(", ") : value;
        };
        if (/^text\/event-stream\b/.test(header("content-type") ?? "")) {
          response.setEncoding("utf8");
          const unread = () => Promise.reject(new Error("The feed answered an event stream"));
          return resolve({
            status: response.statusCode ?? 0,
            header,
            json: unread,
            text: unread,
            discard: async () => void response.destroy(),
            events: () => closing(parseEvents(response as AsyncIterable<string>, limits), () => response.destroy()),
          });
        }
        const body = new Promise<Buffer>((done, fail) => {
          const chunks: Buffer[] = [];
          let size = 0;
          const refuse = (error: unknown) => {
            fail(error);
            response.destroy();
          };
          // Refused before a byte of it is read when its declared length is over the bound.
          try {
            checkBodyBytes(Number(header("content-length") ?? 0), limits);
          } catch (error) {
            return refuse(error);
          }
          response.on("data", (chunk: Buffer) => {
            size += chunk.length;
            try {
              checkBodyBytes(size, limits);
            } catch (error) {
              return refuse(error);
            }
            chunks.push(chunk);
          });
          response.once("end", () => done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
          response.once("error", fail);
          response.once("aborted", () => fail(new Error("The feed connection closed mid-response")));
        });
        body.catch(() => {});
        resolve({
          status: response.statusCode ?? 0,
          header,
          json: async () => parseFeedJson(await body, limits),
          text: async () => (await body).toString("utf8"),
          discard: async () => void (await body.catch(() => {})),
          events: () => {
            throw new Error("The feed did not answer an event stream");
          },
        });
      });
    });
}

/** An iteration that calls `close` however it ends (a verification failure leaves the loop: the stream must not stay open). */
async function* closing<Value>(events: AsyncIterable<Value>, close: () => void): AsyncGenerator<Value> {
  try {
    yield* events;
  } finally {
    close();
  }
}
