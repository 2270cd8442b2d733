import { execFile } from "node:child_process";
import { mkdtemp, readdir, stat, writeFile } from "node:fs/promises";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { generateKeyPairSync } from "node:crypto";
import { device, binding, rule, testFeed } from "../feed.test-support.ts";
import { PepState } from "../state.ts";
import { readConfig } from "./config.ts";
import { main, startPep } from "./main.ts";

const env = {
  SIMROOT_URL: "https://cp.example",
  SIMROOT_PEP_KEY: "k",
  SIMROOT_FEED_PUBLIC_KEY: "/keys/a.pem, /keys/b.pem",
  SIMROOT_TENANT: "ten_env",
};

function io(envOverride: Record<string, string | undefined> = env) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (chunk) => (out += chunk));
  stderr.on("data", (chunk) => (err += chunk));
  return { io: { env: envOverride, stdout, stderr }, out: () => out, err: () => err };
}

describe("configuration", () => {
  it("reads the environment, flags winning", () => {
    expect(readConfig([], env)).toMatchObject({
      url: "https://cp.example",
      apiKey: "k",
      publicKeyFiles: ["/keys/a.pem", "/keys/b.pem"],
      port: 9191,
      adminPort: 9192,
      flowIntervalSeconds: 10,
      host: "127.0.0.1",
      tenantId: "ten_env",
      clockSkewSeconds: 1,
    });
    expect(
      readConfig(
        [
          "--port",
          "7000",
          "--break-glass",
          "10.0.0.0/8,sos.example.com",
          "--break-glass",
          "192.0.2.1",
          "--public-key",
          "/k.pem",
          "--tenant",
          "ten_x",
        ],
        env,
      ),
    ).toMatchObject({
      port: 7000,
      breakGlass: ["10.0.0.0/8", "sos.example.com", "192.0.2.1"],
      publicKeyFiles: ["/k.pem"],
      tenantId: "ten_x",
    });
    expect(readConfig(["--selector", "site=north,fleet=meters"], env)).toMatchObject({ selector: "fleet=meters,site=north" });
    expect(readConfig([], { ...env, SIMROOT_PEP_SELECTOR: "site=lyon" })).toMatchObject({ selector: "site=lyon" });
    expect(readConfig([], env)).toMatchObject({ selector: undefined, feedMode: "stream" });
    expect(readConfig(["--feed", "long-poll"], env)).toMatchObject({ feedMode: "long-poll" });
    expect(() => readConfig([], { ...env, SIMROOT_PEP_FEED: "poll" })).toThrow(/stream, long-poll or push/);
    // push follows the tenant's notices over MQTT: it needs the broker, and an MQTT one.
    expect(() => readConfig([], { ...env, SIMROOT_PEP_FEED: "push" })).toThrow(/--mqtt-url/);
    expect(() => readConfig(["--feed", "push", "--mqtt-url", "https://iot.example"], env)).toThrow(/mqtt:\/\/ or mqtts:\/\//);
    expect(() => readConfig(["--feed", "push", "--mqtt-url", "mqtts://abc-ats.iot.us-east-1.amazonaws.com:443"], env)).toThrow(
      /--mqtt-authorizer/,
    );
    expect(
      readConfig(["--feed", "push"], {
        ...env,
        SIMROOT_PEP_MQTT_URL: "mqtts://abc-ats.iot.us-east-1.amazonaws.com:443",
        SIMROOT_PEP_MQTT_AUTHORIZER: "simroot-production-feed",
      }),
    ).toMatchObject({
      feedMode: "push",
      mqttUrl: "mqtts://abc-ats.iot.us-east-1.amazonaws.com:443",
      mqttAuthorizer: "simroot-production-feed",
    });
    // Given a broker, push is the default; --feed still decides.
    expect(readConfig(["--mqtt-url", "mqtt://127.0.0.1:1883"], env)).toMatchObject({ feedMode: "push" });
    expect(readConfig(["--mqtt-url", "mqtt://127.0.0.1:1883", "--feed", "stream"], env)).toMatchObject({ feedMode: "stream" });
    expect(readConfig(["--help"], env)).toBeUndefined();
  });

  it("keeps the admin listener on loopback when the ext_authz one listens wider (review 85)", () => {
    // /v1/decide and /healthz answer anyone who reaches them (which device holds an address, whether an id exists, the
    // tenant and the sync's errors): a PEP whose Envoy runs elsewhere (--host 0.0.0.0) put them before every device.
    expect(readConfig(["--host", "0.0.0.0"], env)).toMatchObject({ host: "0.0.0.0", adminHost: "127.0.0.1" });
    expect(readConfig(["--host", "0.0.0.0", "--admin-host", "10.0.0.2"], env)).toMatchObject({ adminHost: "10.0.0.2" });
    expect(readConfig([], { ...env, SIMROOT_PEP_ADMIN_HOST: "::1" })).toMatchObject({ host: "127.0.0.1", adminHost: "::1" });
  });

  it("rejects what would make a broken PEP", () => {
    expect(() => readConfig([], { ...env, SIMROOT_PEP_KEY: undefined })).toThrow(/API key/);
    expect(() => readConfig([], { ...env, SIMROOT_FEED_PUBLIC_KEY: "" })).toThrow(/public key/);
    expect(() => readConfig(["--break-glass", "10.1.2.3/8"], env)).toThrow(/host bits/);
    expect(() => readConfig(["--port", "9192"], env)).toThrow(/must differ/);
    expect(() => readConfig(["--flow-interval", "soon"], env)).toThrow(/integer/);
    expect(() => readConfig(["--nope"], env)).toThrow(/nope/);
    expect(() => readConfig(["--selector", "site"], env)).toThrow(/--selector/);
    // Bound to its tenant before its first snapshot: one key signs every tenant's feed.
    expect(() => readConfig([], { ...env, SIMROOT_TENANT: undefined })).toThrow(/tenant is required/);
    // A bounded clock-skew tolerance: beyond 2 s, a replayed head would withhold changes longer than 10 s.
    expect(() => readConfig(["--clock-skew", "3"], env)).toThrow(/--clock-skew must be an integer from 0 to 2/);
    expect(readConfig(["--clock-skew", "2"], env)).toMatchObject({ clockSkewSeconds: 2 });
  });

  it("exits 2 with usage on a bad command line, 0 on --help", async () => {
    const bad = io({});
    expect(await main([], bad.io)).toBe(2);
    expect(bad.err()).toMatch(/control plane URL is required[\s\S]*Usage: simroot-pep/);
    const help = io();
    expect(await main(["--help"], help.io)).toBe(0);
    expect(help.out()).toMatch(/^Usage: simroot-pep/);
  });

  it("runs as the simroot-pep command", async () => {
    const bin = join(import.meta.dirname, "../../bin/simroot-pep.js");
    const { stdout } = await promisify(execFile)(process.execPath, [bin, "--help"]);
    expect(stdout).toMatch(/ext_authz/);
  });
});

/** An ext_authz check as Envoy sends it (fetch would replace the Host header). */
function check(base: string, clientIp: string): Promise<number> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const request = get(
      {
        host: url.hostname,
        port: url.port,
        path: "/x",
        setHost: false,
        headers: { host: "ingest.example.com:8883", "x-forwarded-for": clientIp },
      },
      (response) => {
        response.resume();
        resolve(response.statusCode!);
      },
    );
    request.on("error", reject);
  });
}

describe("the daemon", () => {
  it("syncs, serves ext_authz and health, and resumes from its state file after a restart", async () => {
    const feed = testFeed();
    const folder = await mkdtemp(join(tmpdir(), "simroot-pep-daemon-"));
    const keyFile = join(folder, "feed.pem");
    await writeFile(keyFile, feed.publicKey.export({ type: "spki", format: "pem" }));
    const requests: string[] = [];
    let version = 4;
    const fetch = (async (input: string, init: RequestInit) => {
      const url = new URL(input);
      requests.push(`${url.pathname}${url.search}`);
      if (url.pathname === "/v1/flows") return new Response(null, { status: 202 });
      if (!url.searchParams.has("since"))
        return Response.json(feed.snapshot(4, [device("dev_a"), binding("10.20.0.7", "dev_a"), rule("r1")]));
      if (Number(url.searchParams.get("since")) === 4 && version === 4) {
        version = 5;
        return Response.json(feed.delta(4, 5, [binding("10.20.0.8", "dev_a")]));
      }
      return new Promise<Response>((_, reject) => init.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
    }) as typeof globalThis.fetch;
    const config = readConfig(
      ["--state", join(folder, "state.json"), "--public-key", keyFile, "--port", "0", "--admin-port", "0", "--tenant", feed.tenantId],
      env,
    )!;

    const pep = await startPep(config, { fetch, now: feed.now });
    await expect.poll(() => pep.state.version).toBe(5);
    expect(await check(pep.authzUrl, "10.20.0.8")).toBe(200);
    const health = await globalThis.fetch(`${pep.adminUrl}/healthz`);
    expect(await health.json()).toMatchObject({ status: "ok", version: 5, tenantId: feed.tenantId });
    await pep.stop();
    expect(requests.filter((path) => path.startsWith("/v1/flows"))).toHaveLength(1);

    requests.length = 0;
    const restarted = await startPep(config, { fetch, now: feed.now });
    expect(restarted.state.version).toBe(5);
    await expect.poll(() => requests.length).toBeGreaterThan(0);
    expect(requests[0]).toMatch(/^\/v1\/feed\?since=5&/);
    // Still fresh from the persisted head: it serves at once, before any new response.
    expect(await check(restarted.authzUrl, "10.20.0.8")).toBe(200);
    await restarted.stop();
  });

  it("listens for ext_authz on --host and for admin on --admin-host (loopback unless told)", async () => {
    const feed = testFeed();
    const folder = await mkdtemp(join(tmpdir(), "simroot-pep-daemon-"));
    const keyFile = join(folder, "feed.pem");
    await writeFile(keyFile, feed.publicKey.export({ type: "spki", format: "pem" }));
    const fetch = (async (_input: string, init: RequestInit) =>
      new Promise<Response>((_, reject) =>
        init.signal?.addEventListener("abort", () => reject(init.signal!.reason)),
      )) as typeof globalThis.fetch;
    const config = readConfig(
      ["--state", join(folder, "state.json"), "--public-key", keyFile, "--port", "0", "--admin-port", "0", "--host", "127.0.0.2"],
      { ...env, SIMROOT_TENANT: feed.tenantId, SIMROOT_PEP_FLOW_INTERVAL: "0" },
    )!;
    const pep = await startPep(config, { fetch, now: feed.now });
    try {
      expect(new URL(pep.authzUrl).hostname).toBe("127.0.0.2");
      expect(new URL(pep.adminUrl).hostname).toBe("127.0.0.1");
    } finally {
      await pep.stop();
    }
  });

  describe("verifies the state file it resumes from as it verifies the feed (review 88)", () => {
    /** A state file at version 5 (dev_a holds 10.20.0.7), as a PEP saved it, then edited by `tamper`. */
    async function pepWithStateFile(
      tamper: (json: Record<string, unknown>, feed: ReturnType<typeof testFeed>) => void,
      args: string[] = [],
      more: ReturnType<typeof device>[] = [],
    ) {
      const feed = testFeed();
      const folder = await mkdtemp(join(tmpdir(), "simroot-pep-daemon-"));
      const keyFile = join(folder, "feed.pem");
      await writeFile(keyFile, feed.publicKey.export({ type: "spki", format: "pem" }));
      const saved = new PepState(feed.tenantId);
      const snapshot = feed.snapshot(5, [device("dev_a"), binding("10.20.0.7", "dev_a"), rule("r1"), ...more]);
      saved.replaceWith(snapshot.entries);
      saved.version = 5;
      saved.head = snapshot.signed;
      const json = JSON.parse(JSON.stringify(saved)) as Record<string, unknown>;
      tamper(json, feed);
      await writeFile(join(folder, "state.json"), JSON.stringify(json));
      const requests: string[] = [];
      const fetch = (async (input: string, init: RequestInit) => {
        const url = new URL(input);
        requests.push(`${url.pathname}${url.search}`);
        return new Promise<Response>((_, reject) => init.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
      }) as typeof globalThis.fetch;
      const config = readConfig(
        ["--state", join(folder, "state.json"), "--public-key", keyFile, "--port", "0", "--admin-port", "0", ...args],
        {
          ...env,
          SIMROOT_TENANT: feed.tenantId,
          SIMROOT_PEP_FLOW_INTERVAL: "0",
        },
      )!;
      const logs: Record<string, unknown>[] = [];
      const pep = await startPep(config, { fetch, now: feed.now, log: (line) => logs.push(line) });
      return { pep, requests, logs, folder };
    }

    it("starts empty from a genuine file of another selector than it now follows, failing closed until its snapshot", async () => {
      // Review 158: restarted with `--selector`, a PEP enforced the whole tenant's view it had saved (every site's devices
      // and addresses) until its head expired, while it took its own selector's snapshot.
      // A device the file knows is revoked, with the address its revocation released: kept (review 161: dropped with the
      // rest, it reached the break-glass destinations from that address while the control plane was out of reach).
      const revoked = device("dev_r", "revoked");
      const { pep, requests, logs, folder } = await pepWithStateFile(
        () => {},
        ["--selector", "site=lyon"],
        [{ ...revoked, value: { ...revoked.value, lastAddresses: ["10.20.0.9"] } }],
      );
      try {
        expect([pep.state.version, [...pep.state.devices.keys()]]).toEqual([0, ["dev_r"]]);
        expect(pep.state.devices.get("dev_r")?.state).toBe("revoked");
        expect(pep.state.pendingRevokedHolder("10.20.0.9")).toBe("dev_r");
        await expect.poll(() => requests.length).toBeGreaterThan(0);
        expect(requests[0]).toMatch(/^\/v1\/feed\?limit=.*selector=site%3Dlyon/);
        expect(await check(pep.authzUrl, "10.20.0.7")).toBe(403);
        expect(logs).toContainEqual(expect.objectContaining({ level: "warn", msg: "state file is of another selector: starting empty" }));
        // Not refused as tampered: nothing is moved aside, and the next save replaces it.
        expect((await readdir(folder)).some((name) => name.startsWith("state.json.refused-"))).toBe(false);
      } finally {
        await pep.stop();
      }
    });

    it("resumes from a file whose signed head binds it (the control: nothing tampered)", async () => {
      const { pep, requests } = await pepWithStateFile(() => {});
      try {
        expect(pep.state.version).toBe(5);
        await expect.poll(() => requests.length).toBeGreaterThan(0);
        expect(requests[0]).toMatch(/^\/v1\/feed\?since=5&/);
        expect(await check(pep.authzUrl, "10.20.0.7")).toBe(200);
      } finally {
        await pep.stop();
      }
    });

    const tamperings: [string, (json: Record<string, unknown>, feed: ReturnType<typeof testFeed>) => void][] = [
      [
        "a head signed by a key that is not pinned",
        (json, feed) => {
          const forged = testFeed(feed.tenantId, generateKeyPairSync("ed25519"));
          json.head = forged.snapshot(5, [device("dev_a")]).signed;
        },
      ],
      // The genuine head of version 5 with the version moved on: the deltas in between (a revocation) would be skipped.
      ["a version the head does not bring", (json) => void (json.version = 9)],
      ["an epoch the head is not of", (json) => void (json.epoch = 3)],
      ["a selector the head is not narrowed to", (json) => void (json.scope = "site=lyon")],
      [
        "a head of another tenant",
        (json, feed) => {
          json.head = testFeed("ten_other", { publicKey: feed.publicKey, privateKey: feed.privateKey }).snapshot(5, []).signed;
        },
      ],
      ["no head at all", (json) => void delete json.head],
    ];

    it.each(tamperings)("refuses a file with %s: starts empty, from a snapshot, and says so", async (_, tamper) => {
      const { pep, requests, logs, folder } = await pepWithStateFile(tamper);
      try {
        expect(pep.state.version).toBe(0);
        expect(pep.state.devices.size).toBe(0);
        await expect.poll(() => requests.length).toBeGreaterThan(0);
        // A snapshot first (no `since`), as a PEP without a state file.
        expect(requests[0]).toMatch(/^\/v1\/feed\?limit=/);
        expect(await check(pep.authzUrl, "10.20.0.7")).toBe(403);
        expect(logs).toContainEqual(expect.objectContaining({ level: "error", msg: "state file refused: starting empty" }));
        // Kept aside for whoever investigates; the next save writes a fresh one.
        expect((await readdir(folder)).some((name) => name.startsWith("state.json.refused-"))).toBe(true);
      } finally {
        await pep.stop();
      }
    });

    it("leaves the state file readable and writable by its owner only, one written wider included", async () => {
      const { pep, folder } = await pepWithStateFile(() => {});
      await pep.stop();
      expect((await stat(join(folder, "state.json"))).mode & 0o777).toBe(0o600);
    });
  });

  it("refuses a state file of another tenant", async () => {
    const feed = testFeed();
    const folder = await mkdtemp(join(tmpdir(), "simroot-pep-daemon-"));
    const keyFile = join(folder, "feed.pem");
    await writeFile(keyFile, feed.publicKey.export({ type: "spki", format: "pem" }));
    await writeFile(
      join(folder, "state.json"),
      JSON.stringify({ format: 1, tenantId: "ten_other", version: 3, devices: [], bindings: [], policies: [], grants: [], settings: {} }),
    );
    const config = readConfig(
      ["--state", join(folder, "state.json"), "--public-key", keyFile, "--port", "0", "--admin-port", "0", "--tenant", "ten_acme"],
      env,
    )!;
    await expect(startPep(config)).rejects.toThrow(/for tenant ten_other/);
  });
});
