import { describe, expect, it } from "vitest";
import { FlowReporter, type FlowObservation, type FlowReport } from "./flows.ts";
import { flowReportSchema } from "@simroot/core/feed/flows";

const meter: FlowObservation = {
  deviceId: "dev_a",
  destination: "ingest.example.com",
  port: 8883,
  protocol: "tcp",
  allow: true,
  reason: "allow.rule",
  bytes: 10,
};

function reporter(options: { status?: () => number; maxFlowsPerWindow?: number; maxPendingReports?: number } = {}) {
  let clock = Date.parse("2026-03-01T08:00:00Z");
  const posts: { url: string; headers: Record<string, string>; body: FlowReport }[] = [];
  const flows = new FlowReporter({
    url: "https://cp.example/",
    apiKey: "pep-key",
    pepId: "edge-1",
    now: () => clock,
    ...(options.maxFlowsPerWindow ? { maxFlowsPerWindow: options.maxFlowsPerWindow } : {}),
    ...(options.maxPendingReports ? { maxPendingReports: options.maxPendingReports } : {}),
    fetch: (async (url: string, init: RequestInit) => {
      const status = options.status?.() ?? 202;
      if (status === 0) throw new TypeError("fetch failed");
      posts.push({ url, headers: init.headers as Record<string, string>, body: JSON.parse(String(init.body)) });
      return new Response(null, { status });
    }) as typeof fetch,
  });
  return { flows, posts, advance: (ms: number) => (clock += ms) };
}

describe("flow reporting", () => {
  it("reports a source that names no address as unknown, and an address in one spelling, as the control plane takes them", async () => {
    const { flows, posts, advance } = reporter();
    const unattributed = {
      destination: "203.0.113.5",
      port: 22,
      protocol: "tcp",
      allow: false,
      reason: "deny.unknown-device",
      bytes: 1,
    } as const;
    for (const sourceIp of ["not an address", "2001:DB8:0::1", undefined]) flows.record({ ...unattributed, sourceIp });
    advance(10_000);
    await flows.flush();
    const body = posts[0]!.body;
    expect(body.flows.map((flow) => flow.sourceIp).sort()).toEqual(["2001:db8::1", "unknown"]);
    expect(flowReportSchema.safeParse(body).success).toBe(true);
  });

  it("aggregates a window per device, destination, port, protocol and decision, and posts it", async () => {
    const { flows, posts, advance } = reporter();
    flows.record(meter);
    flows.record({ ...meter, bytes: 32 });
    flows.record({ ...meter, port: 443 });
    flows.record({ ...meter, allow: false, reason: "deny.revoked", bytes: 0 });
    flows.record({
      sourceIp: "10.99.0.1",
      destination: "203.0.113.5",
      port: 22,
      protocol: "tcp",
      allow: false,
      reason: "deny.unknown-device",
      bytes: -3,
    });
    advance(10_000);
    await flows.flush();
    expect(posts).toHaveLength(1);
    expect(posts[0]!.url).toBe("https://cp.example/v1/flows");
    expect(posts[0]!.headers.authorization).toBe("Bearer pep-key");
    expect(posts[0]!.body).toEqual({
      pepId: "edge-1",
      windowStart: "2026-03-01T08:00:00.000Z",
      windowEnd: "2026-03-01T08:00:10.000Z",
      flows: [
        {
          deviceId: "dev_a",
          destination: "ingest.example.com",
          port: 8883,
          protocol: "tcp",
          decision: "allow",
          reason: "allow.rule",
          count: 2,
          bytes: 42,
        },
        {
          deviceId: "dev_a",
          destination: "ingest.example.com",
          port: 443,
          protocol: "tcp",
          decision: "allow",
          reason: "allow.rule",
          count: 1,
          bytes: 10,
        },
        {
          deviceId: "dev_a",
          destination: "ingest.example.com",
          port: 8883,
          protocol: "tcp",
          decision: "deny",
          reason: "deny.revoked",
          count: 1,
          bytes: 0,
        },
        {
          sourceIp: "10.99.0.1",
          destination: "203.0.113.5",
          port: 22,
          protocol: "tcp",
          decision: "deny",
          reason: "deny.unknown-device",
          count: 1,
          bytes: 0,
        },
      ],
    });
    advance(10_000);
    await flows.flush();
    expect(posts).toHaveLength(1);
    expect(flows.stats).toMatchObject({ reports: 1, flows: 4, droppedDecisions: 0 });
  });

  it("bounds a window: flows beyond the limit are dropped and counted", async () => {
    const { flows, posts } = reporter({ maxFlowsPerWindow: 2 });
    for (let port = 1; port <= 5; port++) flows.record({ ...meter, port });
    flows.record({ ...meter, port: 1 });
    await flows.flush();
    expect(posts[0]!.body.flows).toHaveLength(2);
    expect(posts[0]!.body.flows[0]!.count).toBe(2);
    expect(flows.stats.droppedDecisions).toBe(3);
  });

  it("keeps a few windows while the control plane is unreachable, then drops the oldest and counts them", async () => {
    let status = 0;
    const { flows, posts, advance } = reporter({ status: () => status, maxPendingReports: 2 });
    for (let window = 0; window < 4; window++) {
      flows.record({ ...meter, port: 1000 + window });
      flows.record({ ...meter, port: 1000 + window });
      advance(10_000);
      await flows.flush();
    }
    expect(flows.pending).toBe(2);
    expect(flows.stats).toMatchObject({ droppedReports: 2, droppedDecisions: 4, failedPosts: 4 });
    status = 202;
    await flows.flush();
    expect(posts.map((post) => post.body.flows[0]!.port)).toEqual([1002, 1003]);
    expect(flows.pending).toBe(0);
  });

  it("sends nothing for 30 s after its key is refused (401, 403), keeping its other reports (review 91)", async () => {
    // It dropped the refused report and sent the next at once, every 10 s: with a revoked key, about 6 failed
    // authentications a minute or more, which count against its site's address at the control plane.
    for (const refusal of [401, 403]) {
      let status = refusal;
      const { flows, posts, advance } = reporter({ status: () => status });
      for (let window = 0; window < 6; window++) {
        flows.record({ ...meter, port: 2000 + window });
        advance(10_000);
        await flows.flush();
      }
      // One attempt in the first 30 s, one after them; each refused report is dropped (the key will not be taken), the
      // others wait.
      expect(posts).toHaveLength(2);
      expect(flows.pending).toBe(4);
      expect(flows.stats.droppedReports).toBe(2);
      status = 202;
      advance(30_000);
      await flows.flush();
      expect(flows.pending).toBe(0);
      expect(posts.slice(2).map((post) => post.body.flows[0]!.port)).toEqual([2002, 2003, 2004, 2005]);
    }
  });

  it("drops a report the control plane refuses for good, keeps one it may take later", async () => {
    let status = 400;
    const { flows } = reporter({ status: () => status });
    flows.record(meter);
    await flows.flush();
    expect(flows.pending).toBe(0);
    expect(flows.stats.droppedReports).toBe(1);
    status = 503;
    flows.record(meter);
    await flows.flush();
    expect(flows.pending).toBe(1);
  });
});
