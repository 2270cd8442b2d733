/**
 * The IoT Core notifier up to the network boundary: the real @aws-sdk/client-iot-data-plane
 * client, SigV4 and all, publishes to a loopback server that answers the data plane's
 * Publish (`POST /topics/{topic}?qos=1`, the payload as the body). What is not exercised is
 * AWS itself (the fan-out to MQTT subscribers).
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { IoTDataPlaneClient } from "@aws-sdk/client-iot-data-plane";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { iotFeedNotifier } from "./iot-notifier.ts";
import { iotMessageUnitBytes, noticeDeltaMaxBytes, parseHeadMoved, type NoticeSealer } from "./notifier.ts";
import type { FeedEntry, FeedResponse } from "./wire.ts";

/** A sealer that records what it is asked to sign and "signs" it with its range (the feed's real one: feed.ts). */
function recordingSealer(options: { fail?: boolean } = {}) {
  const asked: Parameters<NoticeSealer>[0][] = [];
  const seal: NoticeSealer = async (delta) => {
    asked.push(delta);
    if (options.fail) throw new Error("KMS throttled");
    return { signed: { signature: `${delta.since}-${delta.version}` }, entries: delta.entries } as unknown as FeedResponse;
  };
  return { asked, seal };
}
const entry = (version: number, key = `dev_${version}`): FeedEntry => ({ version, kind: "device", key, value: { state: "revoked" } });

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string;
  /** The payload as received (a notice may be gzipped), and as text. */
  bytes: Buffer;
  body: string;
}
const seen: Seen[] = [];
/** The publishes to the bare topic (`simroot/<tenant>/feed/bare`), apart: each notice is published there too. */
const bare: Seen[] = [];
let release: (() => void) | undefined;
let failing = false;
let server: Server;
let endpoint: string;

beforeAll(async () => {
  server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    const url = new URL(request.url ?? "/", "http://iot");
    (decodeURIComponent(url.pathname).endsWith("/feed/bare") ? bare : seen).push({
      method: request.method!,
      path: url.pathname,
      query: url.searchParams,
      authorization: String(request.headers.authorization),
      bytes,
      body: bytes.toString("utf8"),
    });
    if (release === undefined && seen.length === 1 && holdFirst) await new Promise<void>((resolve) => (release = resolve));
    if (failing) {
      response.writeHead(403, { "content-type": "application/json", "x-amzn-errortype": "ForbiddenException" });
      return response.end(JSON.stringify({ message: "not authorized to publish" }));
    }
    response.writeHead(200, { "content-type": "application/json" });
    response.end("{}");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
let holdFirst = false;
beforeEach(() => {
  seen.length = 0;
  bare.length = 0;
  release = undefined;
  holdFirst = false;
  failing = false;
});

const client = () =>
  new IoTDataPlaneClient({ endpoint, region: "eu-west-1", credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" } });

describe("the IoT Core feed notifier", () => {
  it("publishes the tenant's new head to simroot/<tenant>/feed at QoS 1, signed for iotdata", async () => {
    await iotFeedNotifier(client()).publish({ tenantId: "ten_a", version: 42 });
    expect(seen).toHaveLength(1);
    const [request] = seen;
    expect(request!.method).toBe("POST");
    expect(decodeURIComponent(request!.path)).toBe("/topics/simroot/ten_a/feed");
    expect(request!.query.get("qos")).toBe("1");
    expect(request!.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/iotdata\/aws4_request/);
    expect(parseHeadMoved(request!.body)).toEqual({ tenantId: "ten_a", version: 42 });
    expect(bare.map((each) => [decodeURIComponent(each.path), each.body])).toEqual([
      ["/topics/simroot/ten_a/feed/bare", JSON.stringify({ tenantId: "ten_a", version: 42 })],
    ]);
  });

  it("sends a burst of commits as one more publish of the newest head, never an older one", async () => {
    holdFirst = true;
    const notifier = iotFeedNotifier(client());
    const first = notifier.publish({ tenantId: "ten_b", version: 1 });
    await expect.poll(() => seen.length).toBe(1);
    const burst = [2, 3, 5, 4].map((version) => notifier.publish({ tenantId: "ten_b", version }));
    release!();
    await Promise.all([first, ...burst]);
    expect(seen.map((each) => parseHeadMoved(each.body)?.version)).toEqual([1, 5]);
  });

  it("carries the change signed, and a burst sent while a publish is in flight as one delta signed once", async () => {
    holdFirst = true;
    const { asked, seal } = recordingSealer();
    const notifier = iotFeedNotifier(client());
    const first = notifier.publish({ tenantId: "ten_d", version: 1, since: 0, entries: [entry(1)] }, seal);
    await expect.poll(() => seen.length).toBe(1);
    const burst = [
      notifier.publish({ tenantId: "ten_d", version: 2, since: 1, entries: [entry(2)] }, seal),
      notifier.publish({ tenantId: "ten_d", version: 4, since: 2, entries: [entry(3), entry(4)] }, seal),
    ];
    release!();
    await Promise.all([first, ...burst]);
    expect(asked.map(({ since, version, entries }) => [since, version, entries.map((each) => each.version)])).toEqual([
      [0, 1, [1]],
      [1, 4, [2, 3, 4]],
    ]);
    expect(seen.map((each) => parseHeadMoved(each.body))).toEqual([
      { tenantId: "ten_d", version: 1, response: { signed: { signature: "0-1" }, entries: [entry(1)] } },
      { tenantId: "ten_d", version: 4, response: { signed: { signature: "1-4" }, entries: [entry(2), entry(3), entry(4)] } },
    ]);
    // The same notices bare, for keys bound to a selector (review 98): the version alone, no device.
    expect(bare.map((each) => parseHeadMoved(each.body))).toEqual([
      { tenantId: "ten_d", version: 1 },
      { tenantId: "ten_d", version: 4 },
    ]);
  });

  it("carries only the newest change when the burst does not follow on (another instance's commit came between)", async () => {
    holdFirst = true;
    const { asked, seal } = recordingSealer();
    const notifier = iotFeedNotifier(client());
    const first = notifier.publish({ tenantId: "ten_e", version: 1, since: 0, entries: [entry(1)] }, seal);
    await expect.poll(() => seen.length).toBe(1);
    const later = notifier.publish({ tenantId: "ten_e", version: 3, since: 2, entries: [entry(3)] }, seal);
    release!();
    await Promise.all([first, later]);
    expect(asked.map(({ since, version }) => [since, version])).toEqual([
      [0, 1],
      [2, 3],
    ]);
  });

  it("sends a notice over one IoT Core message gzipped: a second of a busy tenant's attaches in one message, not two", async () => {
    // 60 attaches: an address each, bound to a device (ULID-like ids, as the feed's binding entries carry them).
    const attaches: FeedEntry[] = Array.from({ length: 60 }, (_, index) => ({
      version: 7,
      kind: "binding",
      key: `cellular|10.${index}.${(index * 37) % 256}.${(index * 91) % 256}`,
      value: { deviceId: `dev_01J${randomBytes(12).toString("base64url").toUpperCase().slice(0, 23)}`, revision: index + 3 },
    }));
    const { seal } = recordingSealer();
    await iotFeedNotifier(client()).publish({ tenantId: "ten_g", version: 7, since: 6, entries: attaches }, seal);
    const [sent] = seen;
    const json = Buffer.byteLength(
      JSON.stringify({ tenantId: "ten_g", version: 7, response: { signed: { signature: "6-7" }, entries: attaches } }),
    );
    expect(json).toBeGreaterThan(iotMessageUnitBytes);
    expect([sent!.bytes[0], sent!.bytes[1]]).toEqual([0x1f, 0x8b]);
    expect(sent!.bytes.byteLength).toBeLessThanOrEqual(iotMessageUnitBytes);
    expect(parseHeadMoved(sent!.bytes)).toEqual({
      tenantId: "ten_g",
      version: 7,
      response: { signed: { signature: "6-7" }, entries: attaches },
    });
    // A small one stays plain JSON, as before.
    await iotFeedNotifier(client()).publish({ tenantId: "ten_g", version: 8, since: 7, entries: [entry(8)] }, seal);
    expect(seen[1]!.body.startsWith("{")).toBe(true);
  });

  it("sends the notice bare when its change would not fit, or could not be signed (PEPs poll for it)", async () => {
    const errors: unknown[] = [];
    // Notes that do not compress (random): over the limit gzipped too.
    const big = Array.from({ length: 100 }, (_, index) => ({
      ...entry(1, `dev_${index}`),
      value: { note: randomBytes(225).toString("base64") },
    }));
    const { seal } = recordingSealer();
    await iotFeedNotifier(client()).publish({ tenantId: "ten_f", version: 1, since: 0, entries: big }, seal);
    const failing = recordingSealer({ fail: true });
    await iotFeedNotifier(client(), { onError: (error) => errors.push(error) }).publish(
      { tenantId: "ten_f", version: 2, since: 1, entries: [entry(2)] },
      failing.seal,
    );
    expect(gzipSync(JSON.stringify({ response: { entries: big } })).byteLength).toBeGreaterThan(noticeDeltaMaxBytes);
    expect(seen.map((each) => parseHeadMoved(each.body))).toEqual([
      { tenantId: "ten_f", version: 1 },
      { tenantId: "ten_f", version: 2 },
    ]);
    expect(errors).toMatchObject([{ message: "KMS throttled" }]);
  });

  it("reports a refused publish and does not throw (the PEPs' fallback poll still finds the change)", async () => {
    failing = true;
    const errors: unknown[] = [];
    await iotFeedNotifier(client(), { onError: (error) => errors.push(error) }).publish({ tenantId: "ten_c", version: 7 });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ name: "ForbiddenException" });
  });
});

describe("notices", () => {
  it("are hints: anything that is not a tenant and a version is ignored", () => {
    expect(parseHeadMoved('{"tenantId":"ten_a","version":3}')).toEqual({ tenantId: "ten_a", version: 3 });
    for (const payload of [
      "",
      "null",
      "{}",
      '{"tenantId":"t","version":-1}',
      '{"tenantId":1,"version":3}',
      '{"tenantId":"t","version":1.5}',
      "{",
    ]) {
      expect(parseHeadMoved(payload)).toBeUndefined();
    }
  });

  it("read gzipped: a notice as sent, never a stream that is not gzip or inflates past a notice's size", () => {
    const notice = { tenantId: "ten_a", version: 3 };
    expect(parseHeadMoved(gzipSync(JSON.stringify(notice)))).toEqual(notice);
    expect(parseHeadMoved(Buffer.from(JSON.stringify(notice)))).toEqual(notice);
    expect(parseHeadMoved(Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]))).toBeUndefined();
    expect(parseHeadMoved(gzipSync("not json"))).toBeUndefined();
    // 2 MB of spaces and a notice: 2 KB on the wire, refused before it is inflated whole.
    const bomb = gzipSync(Buffer.concat([Buffer.alloc(2 * 1024 * 1024, " "), Buffer.from(JSON.stringify(notice))]));
    expect(bomb.byteLength).toBeLessThan(5 * 1024);
    expect(parseHeadMoved(bomb)).toBeUndefined();
  });
});
