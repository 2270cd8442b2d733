import { afterEach, describe, expect, it, vi } from "vitest";
import { createClient, withScheme } from "./client.ts";
import { SimrootApiError } from "./problem.ts";

describe("base URLs", () => {
  it("accepts host:port without a scheme (http for loopback, https otherwise)", async () => {
    const seen: string[] = [];
    const fetch = async (input: Request | string | URL) => {
      seen.push(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
      return new Response(JSON.stringify({ items: [] }), { headers: { "content-type": "application/json" } });
    };
    for (const baseUrl of ["localhost:3000", "127.0.0.1:8080/", "api.example.com", "http://10.0.0.1:3000"]) {
      await createClient({ baseUrl, apiKey: "sr_key_a_b", fetch: fetch as typeof globalThis.fetch }).get("/v1/devices");
    }
    expect(seen).toEqual([
      "http://localhost:3000/v1/devices",
      "http://127.0.0.1:8080/v1/devices",
      "https://api.example.com/v1/devices",
      "http://10.0.0.1:3000/v1/devices",
    ]);
  });

  it("sends the key over https to every host that is not loopback, however its name begins (review 124)", async () => {
    const seen: string[] = [];
    const fetch = async (input: Request | string | URL) => {
      seen.push(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
      return new Response(JSON.stringify({ items: [] }), { headers: { "content-type": "application/json" } });
    };
    const remote = ["[::ffff:203.0.113.7]:3000", "127.example.com", "127.0.0.1.nip.io:8080", "[2001:db8::1]", "localhost.example.com"];
    const loopback = ["[::1]:3000", "127.10.0.1", "LOCALHOST:3000"];
    for (const baseUrl of [...remote, ...loopback]) {
      await createClient({ baseUrl, apiKey: "sr_key_a_b", fetch: fetch as typeof globalThis.fetch }).get("/v1/devices");
    }
    expect(seen.map((sent) => new URL(sent).protocol)).toEqual([...remote.map(() => "https:"), ...loopback.map(() => "http:")]);
  });
});

describe("base URLs as the URL parser reads them (review 127)", () => {
  it("takes every spelling of a loopback host for loopback", () => {
    // new URL("http://127.1/").host is 127.0.0.1, "localhost." is localhost, [0::1] is [::1]: a local server reached
    // through them was sent TLS it does not speak.
    const given = ["127.1:3000", "localhost.:3000", "[0::1]:3000", "127.0.1:3000"];
    expect(given.map((base) => new URL(withScheme(base)).protocol)).toEqual(given.map(() => "http:"));
  });

  it("judges the host a URL reaches, not the user name before an @", () => {
    const reached = withScheme("localhost:pw@api.example.com");
    expect([new URL(reached).hostname, new URL(reached).protocol]).toEqual(["api.example.com", "https:"]);
  });
});

/**
 * The waits the SDK asks for between attempts, taken at once (no time passes), with `random` as every draw of full
 * jitter. Undone by `vi.restoreAllMocks()`.
 */
function recordedWaits(random: number): number[] {
  vi.spyOn(Math, "random").mockReturnValue(random);
  const delays: number[] = [];
  vi.spyOn(globalThis, "setTimeout").mockImplementation(((callback: () => void, ms?: number) => {
    delays.push(ms ?? 0);
    queueMicrotask(callback);
    return 0 as unknown as ReturnType<typeof setTimeout>;
  }) as typeof setTimeout);
  return delays;
}

describe("idempotentPost's waits (review 127)", () => {
  afterEach(() => vi.restoreAllMocks());

  it("never waits longer than the 20 s it allows a Retry-After between two attempts", async () => {
    // The longest wait full jitter draws.
    const delays = recordedWaits(0.9999);
    const client = createClient({
      baseUrl: "http://127.0.0.1:3000",
      apiKey: "sr_key_a_b",
      // A gateway timing out on every attempt, with no Retry-After.
      fetch: async () =>
        new Response(JSON.stringify({ title: "gateway.timeout", status: 504 }), {
          status: 504,
          headers: { "content-type": "application/problem+json" },
        }),
    });
    await client.idempotentPost("/v1/devices", { body: { imsi: "208011234567890" }, retries: 12 }).catch(() => undefined);
    expect(delays).toHaveLength(12);
    // 100 ms doubling: the 12th wait was 204.8 s, the 20th would be 14.5 hours.
    expect(Math.max(...delays)).toBeLessThanOrEqual(20_000);
    expect(Math.max(...delays)).toBeGreaterThan(19_990);
  });
});

/**
 * The network answering `answers` in turn (the last one again once they run out): a status, with its Retry-After, or
 * "reset" for a connection dropped; `sent` holds when each request went out (`wall`: by the wall clock), and its method.
 */
function network(answers: readonly (number | "reset" | { status: number; retryAfter: string })[]) {
  const sent: { at: number; wall: number; method: string }[] = [];
  const fetch = async (request: Request) => {
    sent.push({ at: performance.now(), wall: Date.now(), method: request.method });
    const answer = answers[Math.min(sent.length, answers.length) - 1]!;
    if (answer === "reset") throw new TypeError("fetch failed", { cause: { code: "ECONNRESET" } });
    const { status, retryAfter } = typeof answer === "number" ? { status: answer, retryAfter: undefined } : answer;
    if (status < 300) return new Response(JSON.stringify({ items: [] }), { headers: { "content-type": "application/json" } });
    const title = status === 429 ? "rate.limited" : status === 404 ? "device.not_found" : "dependency.unavailable";
    return new Response(JSON.stringify({ type: `urn:simroot:problem:${title}`, title, status, detail: title }), {
      status,
      headers: { "content-type": "application/problem+json", ...(retryAfter === undefined ? {} : { "retry-after": retryAfter }) },
    });
  };
  return { fetch, sent };
}

const clientOver = (fetch: (request: Request) => Promise<Response>, retry?: Parameters<typeof createClient>[0]["retry"]) =>
  createClient({ baseUrl: "http://127.0.0.1:3000", apiKey: "sr_key_a_b", fetch, ...(retry ? { retry } : {}) });

describe("retries of requests safe to repeat", () => {
  afterEach(() => vi.restoreAllMocks());

  it("throws the last 429, with its retryAfterSeconds, once its retries are spent", async () => {
    const { fetch, sent } = network([{ status: 429, retryAfter: "1" }]);
    const error = await clientOver(fetch, { retries: 1 })
      .get("/v1/devices")
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SimrootApiError);
    expect(error).toMatchObject({ status: 429, retryAfterSeconds: 1 });
    expect(sent).toHaveLength(2);
    expect(sent[1]!.at - sent[0]!.at).toBeGreaterThanOrEqual(1000);
  });

  it("waits a Retry-After up to its cap, and throws one asking longer at once", async () => {
    const within = network([{ status: 503, retryAfter: "1" }, 200]);
    expect(await clientOver(within.fetch, { maxWaitSeconds: 1 }).get("/v1/devices")).toEqual({ items: [] });
    expect(within.sent).toHaveLength(2);
    // Waiting less than the server asked would only be refused again.
    const past = network([{ status: 503, retryAfter: "2" }, 200]);
    await expect(clientOver(past.fetch, { maxWaitSeconds: 1 }).get("/v1/devices")).rejects.toMatchObject({
      status: 503,
      retryAfterSeconds: 2,
    });
    expect(past.sent).toHaveLength(1);
  });

  it("reads a Retry-After given as an HTTP date", async () => {
    const at = new Date(Math.ceil(Date.now() / 1000) * 1000 + 1000);
    const { fetch, sent } = network([{ status: 503, retryAfter: at.toUTCString() }, 200]);
    expect(await clientOver(fetch).get("/v1/devices")).toEqual({ items: [] });
    expect(sent).toHaveLength(2);
    // Timers run on the monotonic clock, dates on the wall clock: a few ms apart at most.
    expect(sent[1]!.wall).toBeGreaterThanOrEqual(at.getTime() - 5);
  });

  it("stops waiting when the caller's AbortSignal aborts", async () => {
    const { fetch, sent } = network([{ status: 429, retryAfter: "10" }, 200]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = performance.now();
    await expect(clientOver(fetch).get("/v1/devices", { signal: controller.signal })).rejects.toMatchObject({ name: "AbortError" });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(sent).toHaveLength(1);
  });

  it("starts no attempt past its deadline", async () => {
    const { fetch, sent } = network([{ status: 503, retryAfter: "1" }]);
    const started = performance.now();
    await expect(clientOver(fetch, { retries: 10, deadlineSeconds: 2.5 }).get("/v1/devices")).rejects.toMatchObject({ status: 503 });
    // At 0, 1 and 2 s; the next, at 3 s, would be past it.
    expect(sent).toHaveLength(3);
    expect(performance.now() - started).toBeLessThan(2500);
  });

  it("sends a GET again after the connection dropped", async () => {
    const { fetch, sent } = network(["reset", 200]);
    expect(await clientOver(fetch).get("/v1/devices")).toEqual({ items: [] });
    expect(sent).toHaveLength(2);
  });

  it("backs off exponentially with full jitter when no Retry-After is given", async () => {
    const delays = recordedWaits(0.5);
    const { fetch, sent } = network([502, 504, 503, 200]);
    expect(await clientOver(fetch).get("/v1/devices")).toEqual({ items: [] });
    expect(sent).toHaveLength(4);
    // Half of 100 ms, 200 ms, 400 ms.
    expect(delays).toEqual([50, 100, 200]);
  });

  it("sends once a 4xx other than 429, and a PUT, PATCH or DELETE whatever it is answered", async () => {
    const missing = network([404, 200]);
    await expect(clientOver(missing.fetch).get("/v1/devices")).rejects.toMatchObject({ status: 404 });
    expect(missing.sent).toHaveLength(1);
    // The API does not document them as idempotent: a repeat of one that went through answers 412 or 404, not its result.
    const unavailable = network([{ status: 503, retryAfter: "0" }]);
    const client = clientOver(unavailable.fetch);
    const id = "pol_01JD3Q4ZK8W9X2V5N6M7P8R9ST";
    const ifMatch = { header: { "if-match": '"1"' }, path: { id } };
    await expect(client.delete("/v1/policies/{id}", { params: ifMatch })).rejects.toMatchObject({ status: 503 });
    await expect(client.request("PATCH", "/v1/devices/{id}", { path: { id }, body: {} })).rejects.toMatchObject({ status: 503 });
    await expect(client.request("PUT", "/v1/policies/{id}", { path: { id }, body: {} })).rejects.toMatchObject({ status: 503 });
    expect(unavailable.sent.map((request) => request.method)).toEqual(["DELETE", "PATCH", "PUT"]);
  });
});
