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
});
