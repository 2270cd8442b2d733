import { request as httpRequest, type RequestListener } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { PepEngine } from "../engine.ts";
import { binding, device, rule, settings, testFeed } from "../feed.test-support.ts";
import { PepState } from "../state.ts";
import { authzHandler, authzServer, parseCheck } from "./authz.ts";
import { FlowReporter, type FlowReport } from "./flows.ts";
import { flowReportSchema } from "@simroot/core/feed/flows";

const feed = testFeed();
const state = new PepState(feed.tenantId);
const snapshot = feed.snapshot(3, [
  device("dev_a"),
  binding("10.20.0.7", "dev_a"),
  rule("r1", { destinations: [{ fqdn: "ingest.example.com", ports: [8883, 443], protocol: "tcp" }] }),
  settings(),
]);
state.replaceWith(snapshot.entries);
state.version = 3;
state.head = snapshot.signed;
const engine = new PepEngine(state, { now: feed.now, breakGlass: ["192.0.2.0/24"] });
const reports: FlowReport[] = [];
const flows = new FlowReporter({
  url: "http://cp.invalid",
  apiKey: "k",
  pepId: "pep-1",
  now: feed.now,
  fetch: (async (_url: string, init: RequestInit) => {
    reports.push(JSON.parse(String(init.body)));
    return new Response(null, { status: 202 });
  }) as typeof fetch,
});

const servers: { close(): void }[] = [];
afterAll(() => {
  for (const server of servers) server.close();
});

async function serve(handler: RequestListener) {
  const server = authzServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const base = await serve(authzHandler(engine, flows));

/** A raw request, so that Host and other headers are exactly what the test says (fetch would set Host itself). */
function check(headers: Record<string, string>, path = "/anything?x=1", method = "GET", body = "", to = base) {
  const url = new URL(to);
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    const request = httpRequest({ host: url.hostname, port: url.port, path, method, headers, setHost: false }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode!, headers: response.headers, body }));
    });
    request.on("error", reject);
    request.end(body);
  });
}

describe("Envoy ext_authz contract", () => {
  it("answers 200 with the reason when the policy allows, whatever the path", async () => {
    const allowed = await check({ host: "ingest.example.com:8883", "x-forwarded-for": "10.20.0.7" }, "/v1/readings/42");
    expect(allowed.status).toBe(200);
    expect(allowed.headers["x-simroot-decision-reason"]).toBe("allow.rule");
    expect(allowed.headers["x-simroot-device-id"]).toBe("dev_a");
    // Paths of the admin listener mean nothing here: still a check.
    expect((await check({ host: "ingest.example.com:8883", "x-forwarded-for": "10.20.0.7" }, "/healthz")).status).toBe(200);
    expect((await check({ host: "ingest.example.com:8883", "x-forwarded-for": "10.99.9.9" }, "/healthz")).status).toBe(403);
    expect(
      (await check({ host: "ingest.example.com", "x-forwarded-proto": "https", "x-forwarded-for": "10.20.0.7" }, "/", "POST")).status,
    ).toBe(200);
  });

  it("does not let a device pass as another by sending x-envoy-external-address itself (review 85)", async () => {
    // Envoy sets the header for external clients only; a client on a private (RFC 1918) address that sends no
    // x-forwarded-for is internal, and Envoy forwards its own x-envoy-external-address untouched. Envoy appends the
    // client's address to x-forwarded-for (use_remote_address), which is where the client is read from.
    const spoofed = await check({
      host: "ingest.example.com:8883",
      "x-envoy-external-address": "10.20.0.7",
      "x-forwarded-for": "10.66.6.6",
    });
    expect([spoofed.status, spoofed.headers["x-simroot-decision-reason"], spoofed.headers["x-simroot-device-id"]]).toEqual([
      403,
      "deny.unknown-device",
      undefined,
    ]);
    // Without the x-forwarded-for Envoy writes, there is no client to decide for.
    const alone = await check({ host: "ingest.example.com:8883", "x-envoy-external-address": "10.20.0.7" });
    expect([alone.status, alone.headers["x-simroot-decision-reason"]]).toEqual([403, "deny.bad-request"]);
  });

  it("answers 403 with the reason when it denies", async () => {
    const denied = await check({ host: "ingest.example.com", "x-forwarded-for": "10.20.0.7" });
    expect(denied.status).toBe(403);
    expect(denied.headers["x-simroot-decision-reason"]).toBe("deny.default");
    expect(denied.body).toMatch(/^denied: /);
    const stranger = await check({ host: "ingest.example.com:8883", "x-forwarded-for": "10.99.0.1" });
    expect([stranger.status, stranger.headers["x-simroot-decision-reason"]]).toEqual([403, "deny.unknown-device"]);
  });

  it("answers 403 to a request it cannot make sense of (fail closed)", async () => {
    const cases: Record<string, string>[] = [
      { host: "ingest.example.com:8883" },
      { host: "ingest.example.com:8883", "x-forwarded-for": "not-an-ip" },
      { host: "ingest.example.com:99999", "x-forwarded-for": "10.20.0.7" },
      { host: "*.example.com", "x-forwarded-for": "10.20.0.7" },
      { host: "[zz::1]:443", "x-forwarded-for": "10.20.0.7" },
      // A zone id: "::ffff:10.20.0.9%1" is no binding's key nor a revoked device's last address, and a stale PEP let a
      // revoked device's address, so spelled, reach the break-glass destinations (review 85).
      { host: "ingest.example.com:8883", "x-forwarded-for": "::ffff:10.20.0.7%1" },
      { host: "ingest.example.com:8883", "x-forwarded-for": "fe80::1%eth0" },
      { "x-forwarded-for": "10.20.0.7" },
    ];
    for (const headers of cases) {
      const response = await check(headers);
      expect([response.status, response.headers["x-simroot-decision-reason"]], JSON.stringify(headers)).toEqual([403, "deny.bad-request"]);
    }
  });

  it("answers 403 even to bytes that are not HTTP", async () => {
    const url = new URL(base);
    const socket = connect(Number(url.port), url.hostname);
    socket.end("NOT HTTP AT ALL\r\n\r\n");
    const reply = await new Promise<string>((resolve) => {
      let text = "";
      socket.on("data", (chunk) => (text += chunk));
      socket.on("close", () => resolve(text));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 403 Forbidden\r\nx-simroot-decision-reason: deny.bad-request/);
  });

  it("answers 403 when deciding throws", async () => {
    const broken = await serve(
      authzHandler(
        {
          decide: () => {
            throw new Error("boom");
          },
        } as unknown as PepEngine,
        undefined,
      ),
    );
    const response = await fetch(`${broken}/x`, { headers: { "x-forwarded-for": "10.20.0.7" } });
    expect(response.status).toBe(403);
    expect(response.headers.get("x-simroot-decision-reason")).toBe("deny.error");
  });

  it("records each decision for the flow report, with bytes from content-length", async () => {
    await flows.flush();
    reports.length = 0;
    // Envoy sends the body's length when it forwards the body (with_request_body), else content-length 0.
    await check({ host: "ingest.example.com:443", "x-forwarded-for": "10.20.0.7", "content-length": "100" }, "/", "POST", "x".repeat(100));
    await check({ host: "ingest.example.com:443", "x-forwarded-for": "10.20.0.7", "content-length": "23" }, "/", "POST", "y".repeat(23));
    await check({ host: "ingest.example.com:443", "x-forwarded-for": "10.99.0.1" });
    await flows.flush();
    expect(reports).toHaveLength(1);
    expect(reports[0]!.flows).toEqual([
      {
        deviceId: "dev_a",
        destination: "ingest.example.com",
        port: 443,
        protocol: "tcp",
        decision: "allow",
        reason: "allow.rule",
        count: 2,
        bytes: 123,
      },
      {
        sourceIp: "10.99.0.1",
        destination: "ingest.example.com",
        port: 443,
        protocol: "tcp",
        decision: "deny",
        reason: "deny.unknown-device",
        count: 1,
        bytes: 0,
      },
    ]);
  });

  it("reports an address a snapshot under way denies, which the view binds to another device, as that address's, not the revoked device's (review 70)", async () => {
    // dev_a holds 10.20.0.7 in the view; the snapshot's revocations page says the revoked dev_c released it. The check
    // answered dev_c's id and the flow was reported as dev_c's.
    const pending = new PepState(feed.tenantId);
    pending.replaceWith(snapshot.entries);
    pending.version = 3;
    pending.head = snapshot.signed;
    const revoked = device("dev_c", "revoked");
    const page = feed.snapshot(5, [{ ...revoked, value: { ...revoked.value, lastAddresses: ["10.20.0.7"] } }], { last: false, next: "p" });
    pending.applyRevocations(page.entries, feed.now());
    const pendingReports: FlowReport[] = [];
    const pendingFlows = new FlowReporter({
      url: "http://cp.invalid",
      apiKey: "k",
      pepId: "pep-2",
      now: feed.now,
      fetch: (async (_url: string, init: RequestInit) => {
        pendingReports.push(JSON.parse(String(init.body)));
        return new Response(null, { status: 202 });
      }) as typeof fetch,
    });
    const at = await serve(authzHandler(new PepEngine(pending, { now: feed.now }), pendingFlows));
    const denied = await check({ host: "ingest.example.com:8883", "x-forwarded-for": "10.20.0.7" }, "/", "GET", "", at);
    expect(denied.status).toBe(403);
    expect(denied.headers["x-simroot-decision-reason"]).toBe("deny.revoked-address-pending");
    expect(denied.headers["x-simroot-device-id"]).toBeUndefined();
    expect(denied.body).not.toContain("dev_c");
    await pendingFlows.flush();
    expect(pendingReports[0]!.flows).toEqual([
      {
        sourceIp: "10.20.0.7",
        destination: "ingest.example.com",
        port: 8883,
        protocol: "tcp",
        decision: "deny",
        reason: "deny.revoked-address-pending",
        count: 1,
        bytes: 0,
      },
    ]);
    // The control plane takes the report as it is (a flow's reason is no closed list there).
    expect(flowReportSchema.safeParse(pendingReports[0]).success).toBe(true);
  });
  it("names the device on every allow, empty when none is known, so the client's own x-simroot-device-id never reaches the upstream (review 85)", async () => {
    // Envoy overwrites a request header with the check's answer only when the answer carries it: an allow naming no
    // device (break-glass while the feed is stale, from an address no device holds) let a client's own header through.
    const staleState = new PepState(feed.tenantId);
    const at = await serve(authzHandler(new PepEngine(staleState, { now: feed.now, breakGlass: ["192.0.2.0/24"] }), undefined));
    const allowed = await check({ host: "192.0.2.10", "x-forwarded-for": "10.99.0.1", "x-simroot-device-id": "dev_a" }, "/", "GET", "", at);
    expect([allowed.status, allowed.headers["x-simroot-decision-reason"], allowed.headers["x-simroot-device-id"]]).toEqual([
      200,
      "allow.break-glass",
      "",
    ]);
  });

  it("names no device in the headers of a denial, which Envoy may hand the client: a revoked device's id reached whoever holds its address now (review 74)", async () => {
    // dev_r is revoked and still bound to 10.20.0.9 (or the PEP keeps its last address): whoever sends from that
    // address now is denied as dev_r, and Envoy, unless told otherwise (`allowed_client_headers`), copies a denied
    // check's headers into its answer to that client. The operator keeps the id: in the flow report (and /v1/decide).
    const revokedState = new PepState(feed.tenantId);
    const revokedSnapshot = feed.snapshot(4, [
      device("dev_a"),
      binding("10.20.0.7", "dev_a"),
      device("dev_r", "revoked"),
      binding("10.20.0.9", "dev_r"),
      rule("r1", { destinations: [{ fqdn: "ingest.example.com", ports: [8883, 443], protocol: "tcp" }] }),
      settings(),
    ]);
    revokedState.replaceWith(revokedSnapshot.entries);
    revokedState.version = 4;
    revokedState.head = revokedSnapshot.signed;
    const revokedReports: FlowReport[] = [];
    const revokedFlows = new FlowReporter({
      url: "http://cp.invalid",
      apiKey: "k",
      pepId: "pep-3",
      now: feed.now,
      fetch: (async (_url: string, init: RequestInit) => {
        revokedReports.push(JSON.parse(String(init.body)));
        return new Response(null, { status: 202 });
      }) as typeof fetch,
    });
    const revokedEngine = new PepEngine(revokedState, { now: feed.now });
    const at = await serve(authzHandler(revokedEngine, revokedFlows));
    const denied = await check({ host: "ingest.example.com:8883", "x-forwarded-for": "10.20.0.9" }, "/", "GET", "", at);
    expect([denied.status, denied.headers["x-simroot-decision-reason"]]).toEqual([403, "deny.revoked"]);
    expect(denied.headers["x-simroot-device-id"]).toBeUndefined();
    expect(JSON.stringify(denied.headers)).not.toContain("dev_r");
    expect(denied.body).not.toContain("dev_r");
    // Any denial: a device's own id is of no use to a request that goes nowhere (and the address may have changed hands).
    const deniedByPolicy = await check({ host: "ingest.example.com", "x-forwarded-for": "10.20.0.7" }, "/", "GET", "", at);
    expect([deniedByPolicy.status, deniedByPolicy.headers["x-simroot-decision-reason"]]).toEqual([403, "deny.default"]);
    expect(deniedByPolicy.headers["x-simroot-device-id"]).toBeUndefined();
    // An allowed request still names its device, for the upstream (`allowed_upstream_headers`).
    const allowed = await check({ host: "ingest.example.com:8883", "x-forwarded-for": "10.20.0.7" }, "/", "GET", "", at);
    expect([allowed.status, allowed.headers["x-simroot-device-id"]]).toEqual([200, "dev_a"]);
    // The operator's record keeps who was denied.
    expect(
      revokedEngine.decide({ sourceIp: "10.20.0.9", destination: { fqdn: "ingest.example.com" }, port: 8883, protocol: "tcp" }),
    ).toMatchObject({
      reason: "deny.revoked",
      deviceId: "dev_r",
    });
    await revokedFlows.flush();
    expect(revokedReports[0]!.flows.filter((flow) => flow.decision === "deny")).toEqual([
      expect.objectContaining({ deviceId: "dev_r", reason: "deny.revoked" }),
      expect.objectContaining({ deviceId: "dev_a", reason: "deny.default" }),
    ]);
  });
});

describe("reading an ext_authz check", () => {
  it("takes the client from the x-forwarded-for entry Envoy appended, never from x-envoy-external-address", () => {
    const parsed = parseCheck({ host: "ingest.example.com", "x-forwarded-for": "10.66.6.6, 10.20.0.7" });
    expect(parsed).toMatchObject({
      ok: true,
      request: { sourceIp: "10.20.0.7", destination: { fqdn: "ingest.example.com" }, port: 80, protocol: "tcp" },
    });
    // A client cannot pass itself off as another device by sending its own x-forwarded-for first.
    expect(parseCheck({ host: "a.example", "x-forwarded-for": "10.66.6.6, 10.20.0.7, 172.16.0.1" }, { xffTrustedHops: 1 })).toMatchObject({
      request: { sourceIp: "10.20.0.7" },
    });
    expect(parseCheck({ host: "a.example", "x-envoy-external-address": "10.1.1.1", "x-forwarded-for": "10.2.2.2" })).toMatchObject({
      request: { sourceIp: "10.2.2.2" },
    });
  });

  it("takes the destination from :authority or host, the port defaulting by scheme", () => {
    expect(parseCheck({ ":authority": "[2001:db8::5]:8443", "x-forwarded-for": "10.0.0.1" } as never)).toMatchObject({
      request: { destination: { ip: "2001:db8::5" }, port: 8443 },
    });
    expect(
      parseCheck({ host: "203.0.113.9", "x-forwarded-for": "10.0.0.1", "x-forwarded-proto": "https", "content-length": "512" }),
    ).toMatchObject({
      request: { destination: { ip: "203.0.113.9" }, port: 443 },
      bytes: 512,
    });
  });
});
