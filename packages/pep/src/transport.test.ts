import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { device, testFeed } from "./feed.test-support.ts";
import { PepState } from "./state.ts";
import { FeedSync } from "./sync.ts";
import { nodeGet, parseEvents, type StreamEvent } from "./transport.ts";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(resolve);
        }),
    ),
  );
});

/** A real HTTP server on loopback that counts the TCP connections it accepted. */
async function serve(handle: (request: IncomingMessage, response: ServerResponse) => void) {
  const server = createServer(handle);
  servers.push(server);
  let connections = 0;
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

const request = (url: string, timeoutMs = 5_000, signal = new AbortController().signal) => ({
  url,
  headers: { accept: "application/json" },
  signal,
  timeoutMs,
});

describe("the PEP's HTTP transport (node:http, keep-alive)", () => {
  it("answers status, headers and JSON, and keeps one connection across requests", async () => {
    const plane = await serve((req, res) => {
      res.writeHead(200, { "content-type": "application/json", "x-seen": req.headers.accept ?? "" });
      res.end(JSON.stringify({ path: req.url }));
    });
    const get = nodeGet();
    for (let n = 0; n < 5; n++) {
      const reply = await get(request(`${plane.url}/v1/feed?since=${n}`));
      expect(reply.status).toBe(200);
      expect(reply.header("X-Seen")).toBe("application/json");
      expect(await reply.json()).toEqual({ path: `/v1/feed?since=${n}` });
    }
    expect(plane.connections()).toBe(1);
  });

  it("fails a request that gets no answer in time, one that is aborted, and a body over the limit", async () => {
    const plane = await serve((req, res) => {
      if (req.url === "/big") return res.end("x".repeat(2048));
      // otherwise never answer
    });
    const get = nodeGet({ maxBodyBytes: 1024 });
    await expect(get(request(`${plane.url}/slow`, 100))).rejects.toThrow(/did not answer within 100 ms/);
    const aborting = new AbortController();
    const pending = get(request(`${plane.url}/slow`, 5_000, aborting.signal));
    aborting.abort();
    await expect(pending).rejects.toThrow();
    const big = await get(request(`${plane.url}/big`));
    await expect(big.text()).rejects.toThrow(/more than 1024 bytes/);
  });

  it.each([
    ["node:http", undefined],
    ["an injected fetch", globalThis.fetch],
  ])("lets a sync client follow a run of changes over a single connection (%s)", async (_name, fetchImpl) => {
    const feed = testFeed();
    const responses = [
      feed.snapshot(1, [device("dev_a")]),
      ...[2, 3, 4, 5, 6].map((version) => feed.delta(version - 1, version, [device(`dev_${version}`)])),
    ];
    const plane = await serve((_req, res) => {
      const next = responses.shift();
      if (!next) return; // hold the long poll
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(next));
    });
    const state = new PepState(feed.tenantId);
    let applied = 0;
    const done = new Promise<void>((resolve) => {
      const sync = new FeedSync({
        url: plane.url,
        apiKey: "pep-key",
        publicKeys: [feed.publicKey],
        state,
        now: feed.now,
        ...(fetchImpl ? { fetch: fetchImpl } : {}),
        onChange: () => {
          if (++applied === 6) void sync.stop().then(resolve);
        },
      });
      sync.start();
    });
    await done;
    expect(state.version).toBe(6);
    expect([...state.devices.keys()].sort()).toEqual(["dev_2", "dev_3", "dev_4", "dev_5", "dev_6", "dev_a"]);
    expect(plane.connections()).toBe(1);
  });
});

describe("event streams", () => {
  async function* chunks(...parts: string[]) {
    yield* parts;
  }
  const all = async (events: AsyncIterable<StreamEvent>) => {
    const seen: StreamEvent[] = [];
    for await (const event of events) seen.push(event);
    return seen;
  };

  it("reassembles events split across chunks, with CRLF line ends, comments and multi-line data", async () => {
    expect(
      await all(
        parseEvents(chunks(": ping\n\nevent: del", 'tas\ndata: {"a":1}\n\n', "event: head\r\ndata: x\r\ndata:y\r\n\r\n", "data: last\n\n")),
      ),
    ).toEqual([
      { event: "deltas", data: '{"a":1}' },
      { event: "head", data: "x\ny" },
      { event: "message", data: "last" },
    ]);
  });

  /**
   * The characters the string methods a parser can scan or copy with examined while `run` ran: what `indexOf` read up
   * to its match (or the end), what `slice`/`substring` copied, the whole string for `split`, `includes`, `replace`.
   */
  async function stringWork(run: () => Promise<void>): Promise<number> {
    const proto = String.prototype;
    const saved = {
      indexOf: proto.indexOf,
      slice: proto.slice,
      substring: proto.substring,
      split: proto.split,
      includes: proto.includes,
      replace: proto.replace,
    };
    let work = 0;
    proto.indexOf = function (this: string, search: string, from?: number) {
      const at = saved.indexOf.call(this, search, from);
      work += (at >= 0 ? at + search.length : this.length) - Math.max(0, from ?? 0);
      return at;
    };
    proto.slice = function (this: string, ...args: [number?, number?]) {
      const out = saved.slice.apply(this, args);
      work += out.length;
      return out;
    };
    proto.substring = function (this: string, ...args: [number, number?]) {
      const out = saved.substring.apply(this, args);
      work += out.length;
      return out;
    };
    for (const name of ["split", "includes", "replace"] as const) {
      (proto as unknown as Record<string, unknown>)[name] = function (this: string, ...args: unknown[]) {
        work += this.length;
        return (saved[name] as (...a: unknown[]) => unknown).apply(this, args);
      };
    }
    try {
      await run();
    } finally {
      Object.assign(proto, saved);
    }
    return work;
  }

  it("parses a chunk of many small events in work linear in its length (review 88)", async () => {
    const chunk = 'event: head\ndata: {"v":1}\n\n'.repeat(20_000);
    let events: StreamEvent[] = [];
    const work = await stringWork(async () => {
      events = await all(parseEvents(chunks(chunk)));
    });
    expect(events).toHaveLength(20_000);
    expect(events[19_999]).toEqual({ event: "head", data: '{"v":1}' });
    // Linear: a few passes over the input. The quadratic parser copied what followed each event: ~1,000 times the input.
    expect(work).toBeLessThan(10 * chunk.length);
  });

  it("parses an event that arrives in many chunks in work linear in its length (review 88)", async () => {
    const piece = "x".repeat(2048);
    const parts = ["event: deltas\ndata: ", ...Array.from({ length: 500 }, () => piece), "\n\n"];
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    let events: StreamEvent[] = [];
    const work = await stringWork(async () => {
      events = await all(parseEvents(chunks(...parts)));
    });
    expect(events).toEqual([{ event: "deltas", data: piece.repeat(500) }]);
    // The quadratic parser searched the whole event held so far again at every chunk: ~25 times the input.
    expect(work).toBeLessThan(10 * length);
  });

  it("takes a CRLF split across two chunks as one line end, not an empty line", async () => {
    expect(await all(parseEvents(chunks("event: head\r", "\ndata: 1\r", "\n\r", "\n")))).toEqual([{ event: "head", data: "1" }]);
  });

  it("reads a text/event-stream answer event by event over node:http, and closes the connection when the reader leaves early", async () => {
    let closed = false;
    const server = await serve((_, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write("event: head\ndata: 1\n\n");
      response.on("close", () => (closed = true));
    });
    const reply = await nodeGet()(request(server.url));
    for await (const event of reply.events()) {
      expect(event).toEqual({ event: "head", data: "1" });
      break;
    }
    await expect.poll(() => closed).toBe(true);
    await expect(reply.json()).rejects.toThrow(/event stream/);
  });
});
