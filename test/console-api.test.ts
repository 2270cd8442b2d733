/**
 * What the console reads, over HTTP: its own page and assets (pinned, strict CSP), the traffic
 * map, the policy preview, live changes as server-sent events, and source health.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "@simroot/console/build";
import { createApp } from "@simroot/api";
import { memorySigner } from "@simroot/core";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";
import { standardWebhookHeaders } from "./support/webhooks.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  await buildConsole();
  runtime = await startTestRuntime({ port: 0 });
});
afterAll(() => runtime.stop());

const telemetry = {
  name: "Meters send telemetry",
  selector: { matchLabels: { fleet: "meters" } },
  destinations: [{ fqdn: "ingest.example.com", ports: [8883], protocol: "tcp" }],
  effect: "allow",
};

async function fleetWithTraffic() {
  const tenant = await tenantClient(runtime);
  const meter = (await tenant.call("POST", "/v1/devices", { imsi: "208011234560001", labels: { fleet: "meters" } })).json;
  const camera = (await tenant.call("POST", "/v1/devices", { imsi: "208011234560002", labels: { fleet: "cameras" } })).json;
  const policy = (await tenant.call("POST", "/v1/policies", telemetry)).json;
  const pep = (await tenant.call("POST", "/v1/keys", { name: "edge", role: "pep" })).json.token as string;
  const hourAgo = new Date(Date.now() - 3 * 60 * 60 * 1000).toISOString();
  const now = new Date().toISOString();
  const flow = (deviceId: string, destination: string, port: number, decision: "allow" | "deny", count: number) => ({
    deviceId,
    destination,
    port,
    protocol: "tcp",
    decision,
    reason: decision === "allow" ? "allow.rule" : "deny.default",
    count,
    bytes: count * 100,
  });
  expect(
    (
      await call(runtime, pep, "POST", "/v1/flows", {
        pepId: "edge",
        windowStart: hourAgo,
        windowEnd: hourAgo,
        flows: [flow(meter.id, "ingest.example.com", 8883, "allow", 5)],
      })
    ).status,
  ).toBe(202);
  expect(
    (
      await call(runtime, pep, "POST", "/v1/flows", {
        pepId: "edge",
        windowStart: now,
        windowEnd: now,
        flows: [
          flow(meter.id, "ingest.example.com", 8883, "allow", 7),
          flow(meter.id, "203.0.113.66", 443, "deny", 2),
          flow(camera.id, "video.example.com", 443, "deny", 1),
        ],
      })
    ).status,
  ).toBe(202);
  return { tenant, meter, camera, policy, pep };
}

describe("the console's page and assets", () => {
  it("serves the built page with a strict CSP, and its hashed assets as immutable", async () => {
    const page = await fetch(`${runtime.url}/console/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(page.headers.get("content-security-policy")).toContain("connect-src 'self'");
    const html = await page.text();
    const script = /src="(\/console\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${runtime.url}${script}`, { headers: { "accept-encoding": "gzip" } });
    expect(asset.status).toBe(200);
    expect(asset.headers.get("cache-control")).toContain("immutable");
    expect(asset.headers.get("content-type")).toContain("text/javascript");
    expect((await asset.text()).length).toBeGreaterThan(1000);
  });

  it("opens the console and the API reference in a browsing context group of their own (Cross-Origin-Opener-Policy: same-origin)", async () => {
    // Both hold a tenant's API key in their tab's sessionStorage. Without COOP, a page of another site that opened them
    // (or that they opened) kept a handle on their window: it could navigate it, count its frames and learn when it
    // closed, and share a process with it, within reach of side channels.
    for (const path of ["/console/", "/docs"]) {
      const page = await fetch(`${runtime.url}${path}`);
      expect(page.status, path).toBe(200);
      expect(page.headers.get("content-type"), path).toContain("text/html");
      expect(page.headers.get("cross-origin-opener-policy"), path).toBe("same-origin");
    }
  });

  it("answers 404 for anything that is not a built asset, including paths out of the folder", async () => {
    for (const path of [
      "/console/assets/nothing.js",
      "/console/assets/..%2F..%2Fpackage.json",
      "/console/assets/%2e%2e%2findex.html",
      "/console/assets/main.exe",
    ]) {
      const response = await fetch(`${runtime.url}${path}`);
      expect(response.status, path).toBe(404);
      expect(response.headers.get("content-type")).toContain("application/problem+json");
    }
  });
});

describe("what a browser may keep of an API answer (review 79)", () => {
  it("answers every read and every problem with Cache-Control: no-store: a tenant's data stays out of the HTTP cache", async () => {
    // Without it, the browser's cache kept the fleet (IMSIs, ICCIDs, labels) after the console's sign-out, readable back
    // with no key by any request of the origin (fetch with cache: "only-if-cached").
    const { tenant, meter } = await fleetWithTraffic();
    for (const path of [
      "/v1/devices?limit=10",
      `/v1/devices/${meter.id}`,
      `/v1/devices/${meter.id}/timeline`,
      "/v1/audit?limit=5",
      "/v1/keys",
      "/v1/traffic?hours=24",
      "/v1/devices/dev_none",
    ]) {
      const answer = await tenant.call("GET", path);
      expect(answer.headers.get("cache-control"), path).toBe("no-store");
    }
    const refused = await call(runtime, "sr_key_forged_0000", "GET", "/v1/devices");
    expect(refused.status).toBe(401);
    expect(refused.headers.get("cache-control")).toBe("no-store");
    const created = await tenant.call("POST", "/v1/keys", { name: "shown once", role: "viewer" });
    expect(created.headers.get("cache-control")).toBe("no-store");
    // The live stream and the console's own files keep their policies.
    const live = await fetch(`${runtime.url}/v1/live?wait=1`, { headers: { authorization: `Bearer ${tenant.token}` } });
    expect(live.headers.get("cache-control")).toBe("no-cache");
    await live.body?.cancel();
    expect((await fetch(`${runtime.url}/console/`)).headers.get("cache-control")).toBe("no-cache");
  });

  it("answers everything with X-Content-Type-Options: nosniff, problems echoing a request's text included", async () => {
    // A problem names what was asked (the path, an asset's name): no answer may be read by a browser as other than it says.
    const tenant = await tenantClient(runtime);
    const answers = [
      await fetch(`${runtime.url}/v1/%3Chtml%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E`),
      await fetch(`${runtime.url}/console/assets/%3Cscript%3Ealert(1)%3C%2Fscript%3E.js`),
      await fetch(`${runtime.url}/v1/devices`),
      await fetch(`${runtime.url}/health`),
      await fetch(`${runtime.url}/openapi.json`),
      await fetch(`${runtime.url}/v1/devices?limit=1`, { headers: { authorization: `Bearer ${tenant.token}` } }),
      await fetch(`${runtime.url}/v1/devices`, {
        method: "POST",
        headers: { authorization: `Bearer ${tenant.token}`, "content-type": "application/json" },
        body: '{"name": "<img src=x onerror=alert(1)>"',
      }),
    ];
    for (const answer of answers) {
      expect(answer.headers.get("x-content-type-options"), answer.url).toBe("nosniff");
      await answer.body?.cancel();
    }
  });
});

describe("the traffic map", () => {
  it("groups flows by segment with allowed and denied counts, marking destinations new in the last hour", async () => {
    const { tenant } = await fleetWithTraffic();
    const graph = (await tenant.call("GET", "/v1/traffic?hours=24&groupBy=fleet")).json;
    const edge = (segment: string, destination: string) =>
      graph.edges.find((e: { segment: string; destination: string }) => e.segment === segment && e.destination === destination);
    expect(edge("fleet=meters", "ingest.example.com")).toMatchObject({ allowed: 12, denied: 0, port: 8883, novel: false });
    expect(edge("fleet=meters", "203.0.113.66")).toMatchObject({ allowed: 0, denied: 2, novel: true });
    expect(edge("fleet=cameras", "video.example.com")).toMatchObject({ denied: 1 });
    expect(graph.segments).toEqual([
      { segment: "fleet=cameras", devices: 1 },
      { segment: "fleet=meters", devices: 1 },
    ]);
    // The last hour only: the older report is out of the window.
    const recent = (await tenant.call("GET", "/v1/traffic?hours=1")).json;
    expect(recent.edges.find((e: { destination: string }) => e.destination === "ingest.example.com").allowed).toBe(7);
  });

  it("shows a tenant nothing of another's traffic, and refuses bad input", async () => {
    await fleetWithTraffic();
    const other = await tenantClient(runtime, "other");
    expect((await other.call("GET", "/v1/traffic")).json.edges).toEqual([]);
    const bad = await other.call("GET", "/v1/traffic?hours=0");
    expect(bad.status).toBe(400);
    expect(bad.json.errors[0].path).toBe("hours");
  });
});

describe("the policy preview", () => {
  it("lists the reported connections a change would deny or allow, and changes nothing", async () => {
    const { tenant, meter, camera, policy } = await fleetWithTraffic();
    const narrowed = { ...telemetry, id: policy.id, destinations: [{ fqdn: "ingest.example.com", ports: [443], protocol: "tcp" }] };
    const preview = (await tenant.call("POST", "/v1/policies/preview", { upsert: narrowed })).json;
    expect(preview.matchedDevices).toBe(1);
    expect(preview.sampleDevices).toEqual([meter.id]);
    expect(preview.newlyDenied).toEqual([
      expect.objectContaining({
        deviceId: meter.id,
        destination: "ingest.example.com",
        port: 8883,
        connections: 12,
        before: expect.objectContaining({ reason: "allow.rule" }),
        after: expect.objectContaining({ reason: "deny.default" }),
      }),
    ]);
    expect(preview.newlyAllowed).toEqual([]);

    const cameras = {
      name: "Cameras stream",
      selector: { matchLabels: { fleet: "cameras" } },
      destinations: [{ fqdn: "video.example.com", ports: [443], protocol: "tcp" }],
      effect: "allow",
      id: "new-rule",
    };
    const allowing = (await tenant.call("POST", "/v1/policies/preview", { upsert: cameras })).json;
    expect(allowing.newlyAllowed.map((f: { deviceId: string }) => f.deviceId)).toEqual([camera.id]);

    const removal = (await tenant.call("POST", "/v1/policies/preview", { remove: policy.id })).json;
    expect(removal.newlyDenied).toHaveLength(1);
    // Nothing was saved.
    expect((await tenant.call("GET", `/v1/policies/${policy.id}`)).json.destinations).toEqual(telemetry.destinations);
  });

  it("names the bad fields of a candidate rule, and 404s an unknown rule to remove", async () => {
    const { tenant } = await fleetWithTraffic();
    const bad = await tenant.call("POST", "/v1/policies/preview", { upsert: { id: "x", name: "broken" } });
    expect(bad.status).toBe(400);
    expect(bad.json.errors.map((e: { path: string }) => e.path)).toEqual(
      expect.arrayContaining(["upsert.selector", "upsert.destinations", "upsert.effect"]),
    );
    expect((await tenant.call("POST", "/v1/policies/preview", { upsert: { ...telemetry, id: "a" }, remove: "b" })).status).toBe(400);
    expect((await tenant.call("POST", "/v1/policies/preview", { remove: "pol_nope" })).status).toBe(404);
  });
});

/** A server-sent event of `/v1/live`: each carries the version, a `change` also what changed. */
interface LiveEvent {
  readonly event: string;
  readonly id: string;
  readonly data: { readonly version: number; readonly changes?: readonly { readonly kind: string; readonly key: string }[] };
}

/** Reads server-sent events from `/v1/live` until `until` accepts the list, or the deadline. */
async function liveEvents(token: string, headers: Record<string, string>, until: (events: LiveEvent[]) => boolean) {
  const response = await fetch(`${runtime.url}/v1/live?wait=10`, { headers: { authorization: `Bearer ${token}`, ...headers } });
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/event-stream");
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: LiveEvent[] = [];
  let buffer = "";
  while (!until(events)) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const fields: Record<string, string> = Object.fromEntries(
        buffer
          .slice(0, end)
          .split("\n")
          .filter((l) => !l.startsWith(":"))
          .map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()]),
      );
      buffer = buffer.slice(end + 2);
      if (fields.event) events.push({ event: fields.event, id: fields.id ?? "", data: JSON.parse(fields.data ?? "null") });
    }
  }
  await reader.cancel();
  return events;
}

describe("live changes", () => {
  it("streams each committed change, and resumes after Last-Event-ID without a gap", async () => {
    const tenant = await tenantClient(runtime);
    const first = liveEvents(tenant.token, {}, (events) => events.some((e) => e.event === "change"));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011234560009", labels: { fleet: "meters" } })).json;
    const events = await first;
    expect(events[0]!.event).toBe("ready");
    const change = events.find((e) => e.event === "change")!;
    expect(change.data.changes).toContainEqual({ kind: "device", key: device.id });

    // Disconnected: a change lands meanwhile; resuming from the last id delivers it.
    await tenant.call("POST", `/v1/devices/${device.id}/suspend`, { reason: "maintenance" });
    const resumed = await liveEvents(tenant.token, { "last-event-id": change.id }, (list) => list.some((e) => e.event === "change"));
    const missed = resumed.find((e) => e.event === "change")!;
    expect(Number(missed.id)).toBeGreaterThan(Number(change.id));
    expect(missed.data.changes).toContainEqual({ kind: "device", key: device.id });
  });

  it("ends the stream after its first change behind a gateway that buffers responses (API Gateway), not at the end of its wait (review 62)", async () => {
    // The API function answers through API Gateway, which holds a response until it ends: a change was shown only once
    // the wait was over, and a wait past the gateway's 30 s ended in a timeout.
    const tenant = await tenantClient(runtime);
    const buffered = createApp({ ports: () => runtime.ports, feedSigner: async () => memorySigner(), health: {}, streamFeed: false });
    const started = Date.now();
    const answer = buffered.request("/v1/live?wait=15", { headers: { authorization: `Bearer ${tenant.token}` } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const device = (await tenant.call("POST", "/v1/devices", { imsi: "208011234560019" })).json;
    const text = await (await answer).text();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(text).toContain("event: change");
    expect(text).toContain(device.id);
    const tooLong = await buffered.request("/v1/live?wait=25", { headers: { authorization: `Bearer ${tenant.token}` } });
    expect(tooLong.status).toBe(400);
  });

  it("needs a key of the tenant", async () => {
    expect((await fetch(`${runtime.url}/v1/live`)).status).toBe(401);
  });
});

describe("source health", () => {
  it("counts accepted events per source, and nothing for a refused request", async () => {
    const tenant = await tenantClient(runtime);
    const created = (await tenant.call("POST", "/v1/sources", { name: "core", format: "simroot" })).json;
    const body = JSON.stringify([
      {
        type: "sim.detached",
        dedupeKey: "d1",
        occurredAt: new Date().toISOString(),
        device: { imsi: "208011234560077" },
        sourceType: "x",
        data: {},
      },
    ]);
    expect(
      (
        await runtime.app.request(created.source.ingestPath, {
          method: "POST",
          headers: standardWebhookHeaders(created.credentials.webhookSecret, body),
          body,
        })
      ).status,
    ).toBe(202);
    expect(
      (
        await runtime.app.request(created.source.ingestPath, {
          method: "POST",
          headers: standardWebhookHeaders("whsec_AAAAAAAAAAAAAAAAAAAAAAAA", body),
          body,
        })
      ).status,
    ).toBe(401);
    const health = (await tenant.call("GET", "/v1/source-health")).json.items;
    expect(health).toEqual([
      expect.objectContaining({ sourceId: created.source.id, accepted: 1, rejected: 0, lastEventAt: expect.any(String) }),
    ]);
    const other = await tenantClient(runtime, "other");
    expect((await other.call("GET", "/v1/source-health")).json.items).toEqual([]);
  });
});
