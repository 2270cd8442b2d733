import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import type { FeedResponse } from "@simroot/core/feed/wire";
import { binding, device, rule, testFeed, type TestFeed } from "./feed.test-support.ts";
import { loadState, PepState, saveState } from "./state.ts";
import { FeedSync, type SyncChange } from "./sync.ts";
import { PepEngine } from "./engine.ts";
import type { FeedTrigger } from "./push.ts";

/** A push trigger whose notices the test hands over: `carry` is what the next notice brought (read once). */
function carrier() {
  let carried: unknown;
  const trigger: FeedTrigger = {
    wait: async () => {},
    take: () => {
      const found = carried;
      carried = undefined;
      return found;
    },
    close: () => {},
  };
  return { trigger, carry: (response: unknown) => (carried = response) };
}

type Handler = (url: URL, init: RequestInit) => Response | Promise<Response>;

/** A scripted control plane: each request takes the next handler; with none left it hangs until aborted. */
function fakePlane() {
  const requests: { url: URL; headers: Record<string, string> }[] = [];
  const script: Handler[] = [];
  const fetch = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(String(input));
    requests.push({ url, headers: init.headers as Record<string, string> });
    const handler = script.shift();
    if (handler) return handler(url, init);
    return new Promise<Response>((_, reject) => init.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
  }) as typeof globalThis.fetch;
  return {
    fetch,
    requests,
    reply: (...handlers: Handler[]) => script.push(...handlers),
  };
}

const json =
  (body: unknown, status = 200): Handler =>
  () =>
    Response.json(body, { status });
const notModified =
  (header: string): Handler =>
  () =>
    new Response(null, { status: 304, headers: { "simroot-feed-head": header } });
const gone: Handler = () => Response.json({ type: "urn:simroot:problem:feed.snapshot_required" }, { status: 410 });

/** A streamed answer: the events as given, then (unless `open`) the end of the stream; `closed` resolves when the PEP closes it. */
function streamed(events: readonly { event: string; data: unknown }[], options: { open?: boolean } = {}) {
  let closed!: () => void;
  const done = new Promise<void>((resolve) => (closed = resolve));
  const handler: Handler = () =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          const text = events.map(({ event, data }) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`).join("");
          // Split mid-event: a reader must reassemble events across chunks.
          const bytes = new TextEncoder().encode(text);
          const middle = Math.floor(bytes.length / 2);
          controller.enqueue(bytes.slice(0, middle));
          controller.enqueue(bytes.slice(middle));
          if (!options.open) {
            controller.close();
            closed();
          }
        },
        cancel: () => closed(),
      }),
      { headers: { "content-type": "text/event-stream" } },
    );
  return { handler, closed: done };
}

interface SetupOptions {
  state?: PepState;
  feed?: TestFeed;
  statePath?: string;
  selector?: string;
  stream?: boolean;
  trigger?: FeedTrigger;
  limit?: number;
  limits?: Record<string, number>;
}

async function setup(options: SetupOptions = {}) {
  const feed = options.feed ?? testFeed();
  const plane = fakePlane();
  const state = options.state ?? new PepState(feed.tenantId);
  const statePath = options.statePath ?? join(await mkdtemp(join(tmpdir(), "simroot-pep-sync-")), "state.json");
  const changes: SyncChange[] = [];
  const sync = new FeedSync({
    url: "https://cp.example/",
    apiKey: "pep-key",
    publicKeys: [feed.publicKey],
    state,
    statePath,
    ...(options.selector ? { selector: options.selector } : {}),
    fetch: plane.fetch,
    now: feed.now,
    backoff: { initialMs: 1, maxMs: 5 },
    onChange: (change) => changes.push(change),
    ...(options.stream ? { stream: true } : {}),
    ...(options.trigger ? { trigger: options.trigger } : {}),
    ...(options.limit ? { limit: options.limit } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
  });
  return { feed, plane, state, statePath, sync, changes };
}

/** A PEP at version 5 with one active device, persisted. */
async function synced(options: Omit<SetupOptions, "state" | "feed" | "statePath" | "selector"> = {}) {
  const context = await setup(options);
  const { feed, plane, sync } = context;
  plane.reply(json(feed.snapshot(5, [device("dev_a"), binding("10.0.0.1", "dev_a"), rule("r1")])));
  await sync.step();
  return context;
}

describe("a snapshot interrupted after its revocations page", () => {
  it("is taken again at a restart before any delta, and its revocations hold meanwhile (review 65)", async () => {
    // Restarted from a state kept mid-snapshot, the PEP had resumed the deltas after its older version: the device's
    // older views (suspended) replaced its revocation, and its address reached break-glass again.
    const { feed, plane, sync, state, statePath } = await synced();
    const revoked = { ...device("dev_a", "revoked"), value: { ...device("dev_a", "revoked").value, lastAddresses: ["10.0.0.1"] } };
    plane.reply(
      gone,
      json(feed.snapshot(9, [revoked], { last: false, next: "page-1" })),
      () => new Response("bad gateway", { status: 502 }),
    );
    // The 410 sends the PEP to a snapshot; its second page never comes.
    await expect(
      (async () => {
        for (;;) await sync.step();
      })(),
    ).rejects.toThrow(/502/);
    expect(state.devices.get("dev_a")?.state).toBe("revoked");

    const restored = (await loadState(statePath))!;
    expect(restored.version).toBe(5);
    const again = fakePlane();
    const resumed = new FeedSync({
      url: "https://cp.example/",
      apiKey: "pep-key",
      publicKeys: [feed.publicKey],
      state: restored,
      statePath,
      fetch: again.fetch,
      now: feed.now,
    });
    const engine = new PepEngine(restored, { breakGlass: ["sos.example.com"], now: () => feed.now() + 60_000 });
    const sos = { sourceIp: "10.0.0.1", destination: { fqdn: "sos.example.com" }, port: 443, protocol: "tcp" } as const;
    expect(engine.decide(sos)).toMatchObject({ reason: "deny.revoked", deviceId: "dev_a" });
    again.reply(json(feed.snapshot(10, [revoked, rule("r1")])));
    expect(await resumed.step()).toBe("snapshot");
    expect(again.requests[0]!.url.searchParams.has("since")).toBe(false);
    expect(restored.devices.get("dev_a")?.state).toBe("revoked");
    expect(engine.decide(sos)).toMatchObject({ reason: "deny.revoked", deviceId: "dev_a" });
  });

  it("is taken again by the next step when the snapshot was asked for directly (review 66)", async () => {
    // `snapshot()` is public: one that failed after its revocations page, taken while no snapshot was needed, left its
    // pending addresses denied while the sync went back to deltas.
    const { feed, plane, sync, state } = await synced();
    const revoked = { ...device("dev_b", "revoked"), value: { ...device("dev_b", "revoked").value, lastAddresses: ["10.0.0.1"] } };
    plane.reply(json(feed.snapshot(9, [revoked], { last: false, next: "page-1" })), () => new Response("bad gateway", { status: 502 }));
    await expect(sync.snapshot()).rejects.toThrow(/502/);
    expect(state.pendingRevokedHolder("10.0.0.1")).toBe("dev_b");
    plane.reply(json(feed.snapshot(9, [revoked, device("dev_a"), binding("10.0.0.1", "dev_a"), rule("r1")])));
    expect(await sync.step()).toBe("snapshot");
    expect(state.pendingRevokedHolder("10.0.0.1")).toBeUndefined();
    expect(state.binding("10.0.0.1")?.deviceId).toBe("dev_a");
  });
});

describe("the feed sync client on the push channel", () => {
  it("polls, when no notice comes, by the time half its head's lifetime is left: sooner for a head that arrived aged", async () => {
    const feed = testFeed();
    const plane = fakePlane();
    const state = new PepState(feed.tenantId);
    const waits: number[] = [];
    // A trigger that never hears a notice: every wait runs to its end (here at once), recording how long it would be.
    const trigger = {
      wait: async (_tenant: string, _version: number, maxWaitMs: number) => {
        waits.push(maxWaitMs);
      },
      close: () => {},
    };
    const sync = new FeedSync({
      url: "https://cp.example/",
      apiKey: "k",
      publicKeys: [feed.publicKey],
      state,
      trigger,
      fetch: plane.fetch,
      now: feed.now,
    });
    plane.reply(json(feed.snapshot(5, [device("dev_a")])));
    // Fresh (8 s left): 4 s. Issued 3 s before it arrives (5 s left): 1 s. Issued 7.5 s before (0.5 s left): at least 1 s.
    plane.reply(notModified(feed.idle(5)));
    const aged = (ms: number): Parameters<typeof plane.reply>[0] => {
      const header = feed.idle(5);
      return () => {
        feed.advance(ms);
        return notModified(header)(new URL("https://cp.example/"), {});
      };
    };
    plane.reply(aged(3_000), aged(4_500));
    sync.start();
    await vi.waitFor(() => expect(waits.length).toBeGreaterThanOrEqual(3));
    await sync.stop();
    expect(waits.slice(0, 3)).toEqual([4_000, 1_000, 1_000]);
  });
});

describe("the feed sync client, given the change by a push notice", () => {
  it("applies the signed delta the notice carries, as a polled one, without a request", async () => {
    const { trigger, carry } = carrier();
    const { feed, plane, state, statePath, sync, changes } = await synced({ trigger });
    carry(feed.delta(5, 6, [device("dev_a", "revoked"), binding("10.0.0.1", null)]));
    expect(await sync.step()).toBe("delta");
    expect(plane.requests).toHaveLength(1);
    expect(state.version).toBe(6);
    expect(state.devices.get("dev_a")).toMatchObject({ state: "revoked" });
    expect(changes.at(-1)).toMatchObject({ kind: "delta", version: 6 });
    expect(sync.stats).toMatchObject({ pushed: 1, pushedRefused: 0 });
    // Persisted as a polled delta is: a restarted PEP resumes from it.
    expect((await loadState(statePath))?.version).toBe(6);
  });

  it("polls rather than trade the head it holds for one that expires sooner (a notice delayed on its way)", async () => {
    const { trigger, carry } = carrier();
    const { feed, plane, state, sync } = await synced({ trigger });
    const late = feed.delta(5, 6, [device("dev_a", "revoked")]);
    feed.advance(7_000);
    plane.reply(notModified(feed.idle(5)));
    expect(await sync.step()).toBe("idle");
    const held = state.head;
    carry(late);
    plane.reply(json(feed.delta(5, 6, [device("dev_a", "revoked")])));
    expect(await sync.step()).toBe("delta");
    expect(plane.requests).toHaveLength(3);
    expect(state.version).toBe(6);
    expect(Date.parse(state.head!.head.expiresAt)).toBeGreaterThanOrEqual(Date.parse(held!.head.expiresAt));
    expect(sync.stats).toMatchObject({ pushed: 0, pushedRefused: 1 });
  });

  it("polls when it follows a label selector: the notice's delta is the whole tenant's", async () => {
    const { trigger, carry } = carrier();
    const { feed, plane, state, sync } = await setup({ trigger, selector: "fleet=meters" });
    const entries = [{ ...device("dev_a"), version: 5 }];
    plane.reply(json({ signed: feed.signHead(feed.head({ kind: "snapshot", version: 5, scope: "fleet=meters" }, entries)), entries }));
    expect(await sync.step()).toBe("snapshot");
    carry(feed.delta(5, 6, [device("dev_z", "active", { fleet: "other" })]));
    const idle = feed.signHead(feed.head({ kind: "delta", since: 5, version: 5, scope: "fleet=meters" }, []));
    plane.reply(notModified(Buffer.from(JSON.stringify(idle)).toString("base64")));
    expect(await sync.step()).toBe("idle");
    expect(plane.requests).toHaveLength(2);
    expect(state.devices.has("dev_z")).toBe(false);
    expect(sync.stats).toMatchObject({ pushed: 0, pushedRefused: 1 });
  });
});

describe("the feed sync client", () => {
  it("takes a paginated snapshot, then long polls deltas with If-None-Match, persisting each applied response", async () => {
    const { feed, plane, state, statePath, sync, changes } = await setup();
    plane.reply(
      json(feed.snapshot(5, [device("dev_a"), rule("r1")], { page: 0, last: false, next: "cursor-1" })),
      json(feed.snapshot(5, [binding("10.0.0.1", "dev_a")], { page: 1, last: true, cursor: "cursor-1" })),
    );
    expect(await sync.step()).toBe("snapshot");
    expect(plane.requests.map((r) => r.url.search)).toEqual(["?limit=1000", "?limit=1000&cursor=cursor-1"]);
    expect(plane.requests[0]!.headers.authorization).toBe("Bearer pep-key");
    expect(state.version).toBe(5);
    expect(state.binding("10.0.0.1")?.deviceId).toBe("dev_a");
    expect(changes).toEqual([{ kind: "snapshot", version: 5, devices: 1, bindings: 1, policy: true }]);

    plane.reply(json(feed.delta(5, 6, [device("dev_a", "revoked")])));
    expect(await sync.step()).toBe("delta");
    const poll = plane.requests[2]!;
    expect(Object.fromEntries(poll.url.searchParams)).toEqual({ since: "5", wait: "4", limit: "1000" });
    expect(poll.headers["if-none-match"]).toBe('"5"');
    expect(state.devices.get("dev_a")?.state).toBe("revoked");
    expect(changes.at(-1)).toEqual({ kind: "delta", version: 6, devices: 1, bindings: 0, policy: false });
    expect((await loadState(statePath))!.devices.get("dev_a")?.state).toBe("revoked");
  });

  it("extends freshness on an idle poll (304) without touching the view", async () => {
    const { feed, plane, state, sync } = await synced();
    const before = state.freshUntil;
    feed.advance(30_000);
    plane.reply(notModified(feed.idle(5)));
    expect(await sync.step()).toBe("idle");
    expect(state.version).toBe(5);
    expect(state.freshUntil).toBe(before + 30_000);
    plane.reply(() => new Response(null, { status: 304 }));
    await expect(sync.step()).rejects.toMatchObject({ code: "feed.malformed" });
  });

  it("polls again at once while more deltas wait", async () => {
    const { feed, plane, sync } = await synced();
    plane.reply(json(feed.delta(5, 6, [device("dev_b")], false)), json(feed.delta(6, 7, [device("dev_c")])), notModified(feed.idle(7)));
    await sync.step();
    await sync.step();
    await sync.step();
    // The configured 25 s wait is capped at half the head lifetime (8 s): a fresh head arrives before the one held expires.
    expect(plane.requests.slice(1).map((r) => r.url.searchParams.get("wait"))).toEqual(["4", "0", "4"]);
  });

  describe("streamed (one connection for many changes)", () => {
    const idle = (feed: TestFeed, version: number) => JSON.parse(Buffer.from(feed.idle(version), "base64").toString("utf8"));

    it("applies each deltas event in order and refreshes its head from head events, on one request", async () => {
      const { feed, plane, state, sync, changes } = await synced({ stream: true });
      feed.advance(3_000);
      const stream = streamed([
        { event: "deltas", data: feed.delta(5, 6, [device("dev_a", "revoked")]) },
        { event: "head", data: idle(feed, 6) },
        { event: "deltas", data: feed.delta(6, 8, [device("dev_b"), binding("10.0.0.2", "dev_b")]) },
      ]);
      plane.reply(stream.handler);
      expect(await sync.step()).toBe("delta");
      expect(plane.requests).toHaveLength(2);
      const poll = plane.requests[1]!;
      expect(poll.headers.accept).toMatch(/^text\/event-stream/);
      // The stream lasts the configured wait (20 s): heads arrive inside it, so it is not capped at half a head's lifetime.
      expect(Object.fromEntries(poll.url.searchParams)).toEqual({ since: "5", wait: "20", limit: "1000" });
      expect(state.version).toBe(8);
      expect(state.devices.get("dev_a")?.state).toBe("revoked");
      expect(state.binding("10.0.0.2")?.deviceId).toBe("dev_b");
      expect(changes.slice(1).map((change) => change.version)).toEqual([6, 8]);
      expect(sync.stats).toMatchObject({ notModified: 1, applied: 3 });
    });

    const replays: [string, (feed: TestFeed) => { event: string; data: unknown }, string][] = [
      ["the same deltas again", (feed) => ({ event: "deltas", data: feed.delta(5, 6, [device("dev_a")]) }), "feed.gap"],
      ["an older version's head", (feed) => ({ event: "head", data: idle(feed, 5) }), "feed.rollback"],
      ["a snapshot page", (feed) => ({ event: "deltas", data: feed.snapshot(9, [device("dev_a")]) }), "feed.wrong_kind"],
    ];
    for (const [name, replay, code] of replays) {
      it(`refuses ${name} inside a stream, closes the stream and keeps what it verified before`, async () => {
        const { feed, plane, state, sync } = await synced({ stream: true });
        const stream = streamed([{ event: "deltas", data: feed.delta(5, 6, [device("dev_a", "revoked")]) }, replay(feed)], { open: true });
        plane.reply(stream.handler);
        await expect(sync.step()).rejects.toMatchObject({ code });
        await stream.closed;
        expect(state.version).toBe(6);
        expect(state.devices.get("dev_a")?.state).toBe("revoked");
      });
    }

    it("takes a snapshot after a snapshot_required event", async () => {
      const { feed, plane, state, sync } = await synced({ stream: true });
      plane.reply(streamed([{ event: "snapshot_required", data: { code: "feed.snapshot_required" } }]).handler);
      await sync.step();
      plane.reply(json(feed.snapshot(40, [device("dev_z")])));
      expect(await sync.step()).toBe("snapshot");
      expect(state.version).toBe(40);
    });

    it("backs off from a stream that ends without an event, and follows a control plane that answers a long poll instead", async () => {
      const { feed, plane, state, sync } = await synced({ stream: true });
      plane.reply(streamed([]).handler);
      await expect(sync.step()).rejects.toThrow(/without an event/);
      plane.reply(json(feed.delta(5, 6, [device("dev_a", "suspended")])));
      expect(await sync.step()).toBe("delta");
      expect(state.devices.get("dev_a")?.state).toBe("suspended");
    });
  });

  it("takes a snapshot when the control plane answers 410", async () => {
    const { feed, plane, state, sync } = await synced();
    plane.reply(gone, json(feed.snapshot(40, [device("dev_z")])));
    expect(await sync.step()).toBe("snapshot");
    expect(state.version).toBe(40);
    expect([...state.devices.keys()]).toEqual(["dev_z"]);
  });

  describe("refuses adversarial responses and leaves the view and the state file as they were", () => {
    const forger = testFeed("ten_acme", generateKeyPairSync("ed25519"));
    const cases: [string, (feed: TestFeed) => FeedResponse, string][] = [
      ["a forged signature", () => forger.delta(5, 6, [device("dev_a", "active", { fleet: "admins" })]), "feed.bad_signature"],
      ["a replayed old head", (feed) => feed.delta(3, 4, [device("dev_a", "active")]), "feed.rollback"],
      ["a skipped delta", (feed) => feed.delta(6, 7, [device("dev_a", "suspended")]), "feed.gap"],
      [
        "reordered entries",
        (feed) =>
          feed.delta(5, 7, [
            { ...device("dev_a", "revoked"), version: 7 },
            { ...device("dev_a"), version: 6 },
          ]),
        "feed.gap",
      ],
      [
        "entries that do not match the head",
        (feed) => {
          const genuine = feed.delta(5, 6, [device("dev_a", "revoked")]);
          return { ...genuine, entries: [{ ...genuine.entries[0]!, value: { ...genuine.entries[0]!.value, state: "active" } }] };
        },
        "feed.content_mismatch",
      ],
      [
        "another tenant's head",
        () => testFeed("ten_evil", { publicKey: forger.publicKey, privateKey: forger.privateKey }).delta(5, 6, []),
        "feed.bad_signature",
      ],
      [
        "another tenant's head under the pinned key",
        (feed) => testFeed("ten_evil", { publicKey: feed.publicKey, privateKey: feed.privateKey }).delta(5, 6, [device("dev_x")]),
        "feed.wrong_tenant",
      ],
      [
        "an expired head",
        (feed) => {
          const entries = [{ ...device("dev_a", "active"), version: 6 }];
          return {
            signed: feed.signHead(
              feed.head(
                {
                  kind: "delta",
                  since: 5,
                  version: 6,
                  issuedAt: new Date(feed.now() - 90_000).toISOString(),
                  expiresAt: new Date(feed.now() - 1).toISOString(),
                },
                entries,
              ),
            ),
            entries,
          };
        },
        "feed.expired",
      ],
    ];
    it.each(cases)("%s", async (_name, build, code) => {
      const { feed, plane, state, statePath, sync, changes } = await synced();
      const saved = await readFile(statePath, "utf8");
      const head = state.head;
      plane.reply(json(build(feed)));
      await expect(sync.step()).rejects.toMatchObject({ code });
      expect(state.version).toBe(5);
      expect(state.head).toBe(head);
      expect(state.devices.get("dev_a")).toMatchObject({ state: "active", labels: { fleet: "meters" } });
      expect(state.devices.size).toBe(1);
      expect(await readFile(statePath, "utf8")).toBe(saved);
      expect(changes).toHaveLength(1);
      expect(sync.stats.rejected[code]).toBe(1);
    });

    it.each(cases)("%s, carried by a push notice: refused without a snapshot, and the PEP polls instead", async (_name, build) => {
      const { trigger, carry } = carrier();
      const { feed, plane, state, statePath, sync, changes } = await synced({ trigger });
      const saved = await readFile(statePath, "utf8");
      carry(build(feed));
      plane.reply(notModified(feed.idle(5)));
      expect(await sync.step()).toBe("idle");
      expect(plane.requests).toHaveLength(2);
      expect(plane.requests[1]!.url.searchParams.get("since")).toBe("5");
      expect(state.version).toBe(5);
      expect(state.devices.get("dev_a")).toMatchObject({ state: "active", labels: { fleet: "meters" } });
      expect(state.devices.size).toBe(1);
      expect(await readFile(statePath, "utf8")).toBe(saved);
      expect(changes).toHaveLength(1);
      expect(sync.stats).toMatchObject({ pushed: 0, pushedRefused: 1, rejected: {} });
    });

    it("a snapshot below the version held (rollback), after a 410", async () => {
      const { feed, plane, state, sync } = await synced();
      plane.reply(gone, json(feed.snapshot(2, [device("dev_a", "active", { fleet: "admins" })])));
      await expect(sync.step()).rejects.toMatchObject({ code: "feed.rollback" });
      expect(state.version).toBe(5);
      expect(state.devices.get("dev_a")?.labels).toEqual({ fleet: "meters" });
    });

    it("a snapshot whose pages change version midway", async () => {
      const { feed, plane, state, sync } = await synced();
      plane.reply(
        gone,
        json(feed.snapshot(8, [device("dev_b")], { last: false, next: "c" })),
        json(feed.snapshot(9, [device("dev_c")], { page: 1 })),
      );
      await expect(sync.step()).rejects.toMatchObject({ code: "feed.gap" });
      expect(state.version).toBe(5);
      expect([...state.devices.keys()]).toEqual(["dev_a"]);
    });
  });

  describe("bounds what even a signed feed makes it read and hold, refuses beyond, and keeps the view it had (review 88)", () => {
    /** Snapshot page `page` of version 8 (cursor chained), `count` devices, the last one when `last`. */
    const page = (feed: TestFeed, index: number, count: number, last = false) =>
      feed.snapshot(
        8,
        Array.from({ length: count }, (_, n) => device(`dev_${index}_${n}`)),
        { page: index, last, ...(last ? {} : { next: `c${index + 1}` }), ...(index > 0 ? { cursor: `c${index}` } : {}) },
      );
    /** A value nested `depth` objects deep. */
    const nested = (depth: number) => {
      let value: Record<string, unknown> = { end: true };
      for (let n = 0; n < depth; n++) value = { inner: value };
      return value;
    };

    async function expectRefused(context: Awaited<ReturnType<typeof synced>>, saved: string) {
      const { state, statePath, sync, changes } = context;
      await expect(sync.step()).rejects.toMatchObject({ code: "feed.too_large" });
      expect(state.version).toBe(5);
      expect([...state.devices.keys()]).toEqual(["dev_a"]);
      expect(await readFile(statePath, "utf8")).toBe(saved);
      expect(changes).toHaveLength(1);
      expect(sync.stats.rejected["feed.too_large"]).toBe(1);
    }

    it("a snapshot of more pages than its entries allow: refused before it asks for the page past the bound", async () => {
      // 100 entries at 10 a page: 21 pages at most (twice the full pages a snapshot that size takes, and one).
      const context = await synced({ limit: 10, limits: { maxSnapshotEntries: 100 } });
      const { feed, plane, statePath } = context;
      const saved = await readFile(statePath, "utf8");
      plane.reply(gone, ...Array.from({ length: 300 }, (_, index) => json(page(feed, index, 1))), json({}, 500));
      await expectRefused(context, saved);
      expect(plane.requests.length).toBeLessThanOrEqual(1 + 1 + 21);
    });

    it("a snapshot of more entries than the bound: refused at the page that passes it, before verifying that page", async () => {
      const context = await synced({ limit: 50, limits: { maxSnapshotEntries: 100 } });
      const { feed, plane, statePath } = context;
      const saved = await readFile(statePath, "utf8");
      plane.reply(gone, ...[0, 1, 2, 3].map((index) => json(page(feed, index, 30))), json(page(feed, 4, 30, true)));
      await expectRefused(context, saved);
      // The 410 poll, then pages 0 to 3: page 3 brings the snapshot to 120 entries.
      expect(plane.requests).toHaveLength(1 + 1 + 4);
    });

    it("a response nested deeper than any feed response is", async () => {
      const context = await synced();
      const { feed, plane, statePath } = context;
      const saved = await readFile(statePath, "utf8");
      plane.reply(gone, json(feed.snapshot(8, [device("dev_b"), { kind: "settings", key: "deep", value: nested(100) }])));
      await expectRefused(context, saved);
    });

    it("a streamed event nested deeper than any feed response is", async () => {
      const context = await synced({ stream: true });
      const { feed, plane, statePath } = context;
      const saved = await readFile(statePath, "utf8");
      plane.reply(streamed([{ event: "deltas", data: feed.delta(5, 6, [{ kind: "settings", key: "deep", value: nested(100) }]) }]).handler);
      await expectRefused(context, saved);
    });

    it("a streamed event over the bound", async () => {
      const context = await synced({ stream: true, limits: { maxBodyBytes: 4096 } });
      const { feed, plane, statePath } = context;
      const saved = await readFile(statePath, "utf8");
      plane.reply(streamed([{ event: "deltas", data: feed.delta(5, 6, [device("dev_b", "active", { note: "x".repeat(8192) })]) }]).handler);
      await expectRefused(context, saved);
    });

    it("a response body over the bound, through an injected fetch too", async () => {
      const context = await synced({ limits: { maxBodyBytes: 4096 } });
      const { feed, plane, statePath } = context;
      const saved = await readFile(statePath, "utf8");
      plane.reply(gone, json(feed.snapshot(8, [device("dev_b", "active", { note: "x".repeat(8192) })])));
      await expectRefused(context, saved);
    });
  });

  it("enforces the revocations of a snapshot's first page before its last page arrives", async () => {
    const { feed, plane, sync, state, changes } = await synced();
    const engine = new PepEngine(state, { now: feed.now });
    const request = { deviceId: "dev_a", destination: { ip: "10.0.0.1" }, port: 443, protocol: "tcp" as const };
    expect(engine.decide(request).reason).not.toBe("deny.revoked");
    plane.reply(gone, json(feed.snapshot(9, [device("dev_a", "revoked")], { last: false, next: "page-1" })));
    const stopping = new AbortController();
    const running = sync.step(stopping.signal).catch((error: unknown) => error);
    await vi.waitFor(() => expect(state.devices.get("dev_a")?.state).toBe("revoked"));
    expect(engine.decide(request).reason).toBe("deny.revoked");
    expect(changes.at(-1)).toMatchObject({ kind: "revocations", devices: 1 });
    // The snapshot itself is not applied until its last page: the view stays at version 5, and is pending since now (on
    // the sync's clock: /healthz shows it).
    expect(state.version).toBe(5);
    expect(state).toMatchObject({ snapshotPending: true, snapshotPendingSince: new Date(feed.now()).toISOString() });
    stopping.abort();
    await running;
  });

  it("heals a gap with a snapshot on the next round", async () => {
    const { feed, plane, state, sync } = await synced();
    plane.reply(json(feed.delta(7, 8, [device("dev_a", "suspended")])));
    await expect(sync.step()).rejects.toMatchObject({ code: "feed.gap" });
    plane.reply(json(feed.snapshot(8, [device("dev_a", "suspended")])));
    expect(await sync.step()).toBe("snapshot");
    expect(state.version).toBe(8);
  });

  it("resumes a restarted PEP from its persisted version, without a snapshot", async () => {
    const first = await synced();
    first.plane.reply(json(first.feed.delta(5, 6, [device("dev_a", "quarantined")])));
    await first.sync.step();

    const restored = (await loadState(first.statePath))!;
    const second = await setup({ feed: first.feed, state: restored, statePath: first.statePath });
    second.plane.reply(json(first.feed.delta(6, 7, [device("dev_b")])));
    expect(await second.sync.step()).toBe("delta");
    expect(second.plane.requests[0]!.url.searchParams.get("since")).toBe("6");
    expect(second.state.devices.get("dev_a")?.state).toBe("quarantined");
    expect(second.sync.stats.snapshots).toBe(0);
    expect(second.state.version).toBe(7);
  });

  it("follows its selector: asks for it, keeps it in the state, and starts over from a snapshot when restarted with another", async () => {
    const first = await setup({ selector: "site=north,fleet=meters" });
    const { feed } = first;
    const narrowedSnapshot = (version: number, scope: string) => {
      const entries = [{ ...device("dev_n"), version }];
      return { signed: feed.signHead(feed.head({ kind: "snapshot", version, scope }, entries)), entries };
    };
    first.plane.reply(json(narrowedSnapshot(5, "fleet=meters,site=north")));
    expect(await first.sync.step()).toBe("snapshot");
    expect(first.plane.requests[0]!.url.searchParams.get("selector")).toBe("fleet=meters,site=north");
    expect(first.state.scope).toBe("fleet=meters,site=north");

    const restored = (await loadState(first.statePath))!;
    const same = await setup({ feed, state: restored, statePath: first.statePath, selector: "fleet=meters,site=north" });
    same.plane.reply(json(feed.delta(5, 6, [device("dev_n", "suspended")])));
    // The delta is not narrowed to the PEP's selector: refused, nothing applied.
    await expect(same.sync.step()).rejects.toMatchObject({ code: "feed.wrong_scope" });
    expect(same.state.version).toBe(5);

    const other = await setup({ feed, state: (await loadState(first.statePath))!, statePath: first.statePath, selector: "site=south" });
    other.plane.reply(json(narrowedSnapshot(6, "site=south")));
    expect(await other.sync.step()).toBe("snapshot");
    expect(other.plane.requests[0]!.url.searchParams.has("since")).toBe(false);
    expect(other.state.scope).toBe("site=south");
  });

  it("is bound to its tenant before its first snapshot: never adopts another tenant's genuine feed", async () => {
    await expect(setup({ state: new PepState() })).rejects.toThrow(/tenant must be configured/);
    const feed = testFeed("ten_acme");
    const { plane, state, sync } = await setup({ feed });
    // One key signs every tenant's feed: tenant B's genuine snapshot, handed over on the path, is refused.
    const other = testFeed("ten_other", { publicKey: feed.publicKey, privateKey: feed.privateKey });
    plane.reply(json(other.snapshot(3, [device("dev_b")])));
    await expect(sync.step()).rejects.toMatchObject({ code: "feed.wrong_tenant" });
    expect(state.version).toBe(0);
    expect(state.devices.size).toBe(0);
  });

  it("backs off on errors and recovers; stop() aborts the long poll in flight", async () => {
    const { feed, plane, state, sync } = await synced();
    let failures = 0;
    plane.reply(
      () => {
        failures++;
        return new Response("boom", { status: 503 });
      },
      () => {
        failures++;
        throw new TypeError("fetch failed");
      },
      json(feed.delta(5, 6, [device("dev_a", "revoked")])),
    );
    const errors: unknown[] = [];
    const looping = new FeedSync({
      url: "https://cp.example",
      apiKey: "k",
      publicKeys: [feed.publicKey],
      state,
      fetch: plane.fetch,
      now: feed.now,
      backoff: { initialMs: 1, maxMs: 5 },
      onError: (e) => errors.push(e),
    });
    looping.start();
    await expect.poll(() => state.version, { timeout: 2_000 }).toBe(6);
    // The loop is now hanging in a long poll (the script is empty): stop aborts it.
    await expect.poll(() => plane.requests.length).toBe(5);
    const stopping = Date.now();
    await looping.stop();
    expect(Date.now() - stopping).toBeLessThan(500);
    expect(failures).toBe(2);
    expect(looping.stats.errors).toBe(2);
    expect(errors).toHaveLength(2);
    expect(sync.stats.snapshots).toBe(1);
  });

  it("waits long after its key is refused (401, 403) and as long as a 429 asks, not its 2 s retry (review 89's limit)", async () => {
    // Retried every second or so, a PEP with a revoked key failed about 55 times a minute: past the control plane's limit
    // of failed authentications per address, which then refused every PEP behind the same address (a site's NAT).
    const feed = testFeed();
    const loop = async (answer: () => Response) => {
      let requests = 0;
      const looping = new FeedSync({
        url: "https://cp.example",
        apiKey: "k",
        publicKeys: [feed.publicKey],
        state: new PepState(feed.tenantId),
        fetch: (async () => {
          requests++;
          return answer();
        }) as typeof globalThis.fetch,
        now: feed.now,
        backoff: { initialMs: 1, maxMs: 5, refusedMs: 10_000 },
      });
      looping.start();
      await new Promise((resolve) => setTimeout(resolve, 300));
      await looping.stop();
      return requests;
    };
    const problem =
      (status: number, headers: Record<string, string> = {}) =>
      () =>
        Response.json({ status }, { status, headers: { "content-type": "application/problem+json", ...headers } });
    // A control plane that fails is retried at once (its recovery must be seen before the view expires).
    expect(await loop(problem(503))).toBeGreaterThan(10);
    expect(await loop(problem(401))).toBe(1);
    expect(await loop(problem(403))).toBe(1);
    expect(await loop(problem(429, { "retry-after": "30" }))).toBe(1);
    // A 429 that names no wait, or a short one, is retried as other failures are, at least its Retry-After apart.
    expect(await loop(problem(429))).toBeGreaterThan(10);
  });

  it("keeps working in memory when the state file cannot be written", async () => {
    const feed = testFeed();
    const plane = fakePlane();
    const state = new PepState(feed.tenantId);
    const errors: unknown[] = [];
    const blocker = join(await mkdtemp(join(tmpdir(), "simroot-pep-sync-")), "file");
    await saveState(blocker, state);
    const sync = new FeedSync({
      url: "https://cp.example",
      apiKey: "k",
      publicKeys: [feed.publicKey],
      state,
      statePath: join(blocker, "state.json"),
      fetch: plane.fetch,
      now: feed.now,
      onError: (e) => errors.push(e),
    });
    plane.reply(json(feed.snapshot(2, [device("dev_a")])));
    await sync.step();
    expect(state.version).toBe(2);
    expect(errors).toHaveLength(1);
  });
});
