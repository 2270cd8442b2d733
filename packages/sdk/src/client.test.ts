import { describe, expect, it } from "vitest";
import { createClient } from "./client.ts";

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
