/**
 * Someone on the path between a PEP and the control plane: a loopback HTTP proxy between a
 * real PEP sync client (its default node:http transport) and the real control plane, which
 * holds a `pep` key of the tenant (or of another) and answers polls with whatever genuine,
 * signed responses it can obtain: old ones replayed, another tenant's or selector's, heads
 * signed for cursors it forged (a future version, a snapshot page at the PEP's own version in
 * answer to a delta poll), or the current idle head replayed while a revocation is withheld.
 * Every one is refused; a PEP fed nothing but replays fails closed once its head expires.
 */
import { createPublicKey } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { maxClockSkewSeconds, maxHeadLifetimeSeconds } from "@simroot/core";
import { PepEngine } from "@simroot/pep/engine";
import { PepState } from "@simroot/pep/state";
import { FeedSync } from "@simroot/pep/sync";
import { call, startTestRuntime, tenantClient, type TestRuntime } from "./support/runtime.ts";

let runtime: TestRuntime;
beforeAll(async () => {
  runtime = await startTestRuntime({ port: 0 });
});
afterAll(() => runtime.stop());

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}
/** What the proxy does with one request: forward it (as given, or altered) and answer what it likes. */
type Tamper = (
  request: { path: string; headers: Record<string, string> },
  forward: (path: string, headers?: Record<string, string>) => Promise<Reply>,
) => Promise<Reply>;

/** A loopback man in the middle: forwards to the control plane unless `tamper` is set. */
async function proxy() {
  let tamper: Tamper | undefined;
  const forward = async (path: string, headers: Record<string, string>): Promise<Reply> => {
    const response = await fetch(`${runtime.url}${path}`, { headers });
    const kept: Record<string, string> = {};
    for (const name of ["content-type", "etag", "simroot-feed-head"]) {
      const value = response.headers.get(name);
      if (value !== null) kept[name] = value;
    }
    return { status: response.status, headers: kept, body: await response.text() };
  };
  const server: Server = createServer(async (request: IncomingMessage, response) => {
    const headers = Object.fromEntries(
      Object.entries(request.headers).filter(([name]) => ["authorization", "accept", "if-none-match"].includes(name)),
    ) as Record<string, string>;
    const path = request.url!;
    const reply = tamper
      ? await tamper({ path, headers }, (altered, alteredHeaders) => forward(altered, alteredHeaders ?? headers))
      : await forward(path, headers);
    response.writeHead(reply.status, reply.headers).end(reply.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    set: (next: Tamper | undefined) => (tamper = next),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A cursor as the control plane encodes it, with whatever version, page and phase the attacker likes. */
const forgedCursor = (fields: Record<string, unknown>) => Buffer.from(JSON.stringify(fields)).toString("base64url");
const withQuery = (path: string, change: (query: URLSearchParams) => void) => {
  const url = new URL(path, "http://x");
  change(url.searchParams);
  return `${url.pathname}?${url.searchParams}`;
};

const imsi = "208011234567890";
const allowRule = {
  name: "Meters send telemetry",
  selector: { matchLabels: { fleet: "meters" } },
  destinations: [{ fqdn: "ingest.example.com", ports: [8883], protocol: "tcp" }],
  effect: "allow",
};

async function pepOf(name: string, selector?: string) {
  const tenant = await tenantClient(runtime, name);
  const token = (await tenant.call("POST", "/v1/keys", { name: "edge", role: "pep" })).json.token as string;
  const publicKey = createPublicKey((await call(runtime, token, "GET", "/v1/feed/keys")).json.keys[0].publicKeyPem);
  const device = (await tenant.call("POST", "/v1/devices", { imsi, labels: { fleet: "meters", site: "north" } })).json as { id: string };
  expect((await tenant.call("POST", "/v1/policies", allowRule)).status).toBe(201);
  const mitm = await proxy();
  const state = new PepState(tenant.tenant.id);
  const sync = new FeedSync({
    url: mitm.url,
    apiKey: token,
    publicKeys: [publicKey],
    state,
    waitSeconds: 0,
    ...(selector ? { selector } : {}),
  });
  const engine = new PepEngine(state);
  const decide = () => engine.decide({ deviceId: device.id, destination: { fqdn: "ingest.example.com" }, port: 8883, protocol: "tcp" });
  expect(await sync.step()).toBe("snapshot");
  expect(decide()).toMatchObject({ allow: true });
  return { tenant, token, device, mitm, state, sync, engine, decide };
}

/** The step is refused with `code`, and the PEP's view and freshness did not move. */
async function refused(pep: Awaited<ReturnType<typeof pepOf>>, code: string) {
  const before = { version: pep.state.version, epoch: pep.state.epoch, head: pep.state.head };
  await expect(pep.sync.step()).rejects.toMatchObject({ code });
  expect({ version: pep.state.version, epoch: pep.state.epoch, head: pep.state.head }).toEqual(before);
}

const peps: Awaited<ReturnType<typeof pepOf>>[] = [];
afterAll(() => Promise.all(peps.map((pep) => pep.mitm.close())));
const started = async (name: string, selector?: string) => {
  const pep = await pepOf(name, selector);
  peps.push(pep);
  return pep;
};

describe("a PEP behind a man in the middle", () => {
  it("refuses an older genuine response replayed", async () => {
    const pep = await started("replay");
    let recorded: Reply | undefined;
    pep.mitm.set(async (request, forward) => (recorded = await forward(request.path)));
    await pep.tenant.call("POST", "/v1/policies", { ...allowRule, name: "second" });
    expect(await pep.sync.step()).toBe("delta");
    expect(JSON.parse(recorded!.body).entries.length).toBeGreaterThan(0);
    pep.mitm.set(undefined);
    await pep.tenant.call("POST", "/v1/policies", { ...allowRule, name: "third" });
    expect(await pep.sync.step()).toBe("delta");
    // The delta that brought the PEP to its previous version, replayed as the answer to its next poll.
    pep.mitm.set(async () => recorded!);
    await refused(pep, "feed.rollback");
  });

  it("refuses another tenant's genuine feed, and a feed narrowed to another selector", async () => {
    const pep = await started("tenant-a");
    const other = await started("tenant-b");
    // The man in the middle holds tenant B's pep key: he asks with it and hands over B's genuine deltas and snapshot.
    pep.mitm.set((request, forward) => forward(request.path, { ...request.headers, authorization: `Bearer ${other.token}` }));
    await refused(pep, "feed.wrong_tenant");

    const north = await started("sites", "site=north");
    north.mitm.set((request, forward) => forward(withQuery(request.path, (query) => query.set("selector", "site=south"))));
    await refused(north, "feed.wrong_scope");
    north.mitm.set((request, forward) => forward(withQuery(request.path, (query) => query.delete("selector"))));
    await refused(north, "feed.wrong_scope");
  });

  it("gets no future version signed: the control plane refuses a forged cursor past the head, and the PEP keeps its view", async () => {
    const pep = await started("future");
    const future = forgedCursor({ version: pep.state.version + 1_000_000, page: 1, phase: "bindings" });
    // Signed, it would have been refused by the PEP (a snapshot head answering a delta poll; a gap in a snapshot); the
    // control plane no longer signs it at all (review 57).
    const answer = await call(runtime, pep.token, "GET", `/v1/feed?cursor=${future}`);
    expect([answer.status, answer.json.signed]).toEqual([400, undefined]);
    // As the answer to a delta poll: were a future head taken, every genuine head after it would be refused as a rollback.
    pep.mitm.set((request, forward) =>
      forward(
        withQuery(request.path, (query) => {
          query.delete("since");
          query.delete("wait");
          query.set("cursor", future);
        }),
      ),
    );
    const before = { version: pep.state.version, epoch: pep.state.epoch, head: pep.state.head };
    await expect(pep.sync.step()).rejects.toBeDefined();
    // As a page of a snapshot the PEP asked for.
    pep.mitm.set((request, forward) => forward(withQuery(request.path, (query) => query.set("cursor", future))));
    await expect(pep.sync.snapshot()).rejects.toBeDefined();
    expect({ version: pep.state.version, epoch: pep.state.epoch, head: pep.state.head }).toEqual(before);
    pep.mitm.set(undefined);
    expect(await pep.sync.step()).not.toBe(undefined);
    expect(pep.decide()).toMatchObject({ allow: true });
  });

  it("refuses a snapshot head at its own version in answer to a delta poll (the freeze), and the revocation gets through", async () => {
    const pep = await started("freeze");
    const held = pep.state.version;
    // A snapshot "page" at the version held, empty (past the last binding), freshly signed on every poll.
    const frozen = forgedCursor({ version: held, page: 7, phase: "bindings" });
    pep.mitm.set((request, forward) =>
      forward(
        withQuery(request.path, (query) => {
          query.delete("since");
          query.delete("wait");
          query.set("cursor", frozen);
        }),
      ),
    );
    const genuineFrozen = JSON.parse((await call(runtime, pep.token, "GET", `/v1/feed?cursor=${frozen}`)).text);
    expect(genuineFrozen.signed.head).toMatchObject({ kind: "snapshot", version: held });
    expect((await pep.tenant.call("POST", `/v1/devices/${pep.device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    await refused(pep, "feed.wrong_kind");
    pep.mitm.set(undefined);
    await pep.sync.step();
    expect(pep.decide()).toMatchObject({ allow: false, reason: "deny.revoked" });
  });

  it("withholds a revocation by replaying the current genuine idle head at most the head lifetime plus the skew tolerance (<= 10 s), then fails closed", async () => {
    const pep = await started("withhold");
    let idle: Reply | undefined;
    pep.mitm.set(async (request, forward) => (idle = await forward(request.path)));
    expect(await pep.sync.step()).toBe("idle");
    expect(idle!.status).toBe(304);
    // From now on every poll is answered with that genuine idle head: the revocation never reaches the PEP.
    pep.mitm.set(async () => idle!);
    const revokedAt = Date.now();
    expect((await pep.tenant.call("POST", `/v1/devices/${pep.device.id}/revoke`, { reason: "stolen" })).status).toBe(200);
    let decision = pep.decide();
    while (decision.allow) {
      await pep.sync.step().catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 100));
      decision = pep.decide();
    }
    const window = Date.now() - revokedAt;
    expect(decision.reason).toBe("deny.feed-expired");
    expect(pep.state.devices.get(pep.device.id)?.state).toBe("active");
    expect(window).toBeLessThanOrEqual((maxHeadLifetimeSeconds + maxClockSkewSeconds) * 1000);
    expect(maxHeadLifetimeSeconds + maxClockSkewSeconds).toBeLessThanOrEqual(10);
    // Replays never extend the freshness of the view: the PEP stays closed until a genuine, current head arrives.
    await pep.sync.step().catch(() => {});
    expect(pep.engine.fresh()).toBe(false);
    pep.mitm.set(undefined);
    await pep.sync.step();
    expect(pep.decide()).toMatchObject({ allow: false, reason: "deny.revoked" });
  }, 20_000);
});
