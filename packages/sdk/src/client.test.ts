import { afterEach, describe, expect, it, vi } from "vitest";
import { createClient, withScheme } from "./client.ts";

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

describe("idempotentPost's waits (review 127)", () => {
  afterEach(() => vi.restoreAllMocks());

  it("never waits longer than the 60 s it allows a Retry-After between two attempts", async () => {
    const delays: number[] = [];
    vi.spyOn(globalThis, "setTimeout").mockImplementation(((callback: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      queueMicrotask(callback);
      return 0 as unknown as ReturnType<typeof setTimeout>;
    }) as typeof setTimeout);
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
    expect(Math.max(...delays)).toBe(60_000);
  });
});
