/**
 * `simroot-pep`: wires the state file, the feed sync, the engine, the flow reporter and the
 * two listeners (ext_authz; admin) together. Exit codes: 0 stopped by a signal, 1 failed to
 * start, 2 bad command line.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { readFile, rename } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { PepEngine } from "../engine.ts";
import { loadState, PepState, restrictStateFile } from "../state.ts";
import { mqttTrigger } from "../mqtt-trigger.ts";
import { FeedSync } from "../sync.ts";
import { isFeedVerificationError, verifyStoredView } from "../verify.ts";
import { adminHandler } from "./admin.ts";
import { authzHandler, authzServer } from "./authz.ts";
import { readConfig, usage, UsageError, type PepConfig } from "./config.ts";
import { FlowReporter } from "./flows.ts";

export interface Io {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

export interface PepDeps {
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  /** One JSON object per line. */
  readonly log?: (line: Record<string, unknown>) => void;
}

export async function readPublicKeys(files: readonly string[]): Promise<KeyObject[]> {
  return Promise.all(
    files.map(async (file) => {
      let key: KeyObject;
      try {
        key = createPublicKey(await readFile(file, "utf8"));
      } catch (error) {
        throw new Error(`${file} is not a readable PEM public key (the feed's, from GET /v1/feed/keys): ${(error as Error).message}`);
      }
      if (key.asymmetricKeyType !== "ed25519") throw new Error(`${file} is not an Ed25519 public key`);
      return key;
    }),
  );
}

function listen(server: Server, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });

const urlOf = (server: Server) => {
  const { address, port } = server.address() as AddressInfo;
  return `http://${address.includes(":") ? `[${address}]` : address}:${port}`;
};

/**
 * The state file's view, once its head verifies against the pinned keys and binds the view it holds (`verifyStoredView`);
 * undefined when there is no file, or when it does not verify: then it is moved aside (`<path>.refused-<time>`) and the
 * PEP starts empty, failing closed until its first snapshot, as it does without a file (review 88). A genuine file of
 * another selector starts it empty too but for its revocations (terminal), and is left to be replaced. A file of another tenant stops the PEP: that is a
 * configuration to fix, not a file to replace.
 */
async function verifiedState(config: PepConfig, publicKeys: readonly KeyObject[], log: (line: Record<string, unknown>) => void) {
  const path = config.statePath;
  if (await restrictStateFile(path)) log({ level: "warn", msg: "state file was readable by others: its mode is 0600 now", path });
  const state = await loadState(path);
  if (!state) return undefined;
  state.tenantId ??= config.tenantId;
  if (state.tenantId !== config.tenantId) throw new Error(`the state file ${path} is for tenant ${state.tenantId}, not ${config.tenantId}`);
  try {
    verifyStoredView(state, { publicKeys, tenantId: config.tenantId });
  } catch (error) {
    if (!isFeedVerificationError(error)) throw error;
    const aside = `${path}.refused-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    await rename(path, aside);
    log({ level: "error", msg: "state file refused: starting empty", reason: error.code, error: error.message, path, movedTo: aside });
    return undefined;
  }
  // A genuine view of another selector (or of the whole tenant) than this PEP follows now is not its view (review 158: it
  // was enforced until its head expired, every site's devices and addresses with it): start empty, failing closed until
  // the snapshot of its own selector, which the next save writes over it.
  // Its revocations are kept, and enforced until the snapshot completes (review 161: dropped with the rest, a revoked
  // device reached the break-glass destinations from its last address while the control plane was out of reach).
  if (state.scope !== config.selector) {
    const kept = new PepState(config.tenantId);
    const revoked = kept.applyRevocations(state.revocations());
    log({
      level: "warn",
      msg: "state file is of another selector: starting empty",
      stored: state.scope ?? "the whole tenant",
      selector: config.selector ?? "the whole tenant",
      path,
      revocationsKept: revoked.devices,
    });
    return kept;
  }
  return state;
}

/** Starts a PEP: resumes from the state file (or starts empty, failing closed until its first snapshot). */
export async function startPep(config: PepConfig, deps: PepDeps = {}) {
  const log = deps.log ?? (() => {});
  const publicKeys = await readPublicKeys(config.publicKeyFiles);
  const state = (await verifiedState(config, publicKeys, log)) ?? new PepState(config.tenantId);
  log({ level: "info", msg: "state loaded", tenantId: state.tenantId, version: state.version });
  const engine = new PepEngine(state, {
    breakGlass: config.breakGlass,
    clockSkewSeconds: config.clockSkewSeconds,
    ...(deps.now ? { now: deps.now } : {}),
  });
  const flows =
    config.flowIntervalSeconds > 0
      ? new FlowReporter({
          url: config.url,
          apiKey: config.apiKey,
          pepId: config.pepId,
          intervalMs: config.flowIntervalSeconds * 1000,
          ...(deps.fetch ? { fetch: deps.fetch } : {}),
          ...(deps.now ? { now: deps.now } : {}),
          onError: (error) => log({ level: "warn", msg: "flow report failed", error: String(error) }),
        })
      : undefined;
  // `push`: no request waits on the control plane; a notice on the tenant's MQTT topic says when to poll.
  const trigger =
    config.feedMode === "push"
      ? mqttTrigger({
          url: config.mqttUrl!,
          apiKey: config.apiKey,
          ...(config.mqttAuthorizer ? { authorizer: config.mqttAuthorizer } : {}),
          name: config.pepId,
          // Narrowed to a selector (a key bound to one may follow only the bare notices).
          bare: config.selector !== undefined,
          onError: (error) => log({ level: "warn", msg: "feed channel failed", error: `${error.name}: ${error.message}` }),
        })
      : undefined;
  const sync = new FeedSync({
    url: config.url,
    apiKey: config.apiKey,
    publicKeys,
    state,
    statePath: config.statePath,
    clockSkewSeconds: config.clockSkewSeconds,
    stream: config.feedMode === "stream",
    ...(trigger ? { trigger } : {}),
    ...(config.selector ? { selector: config.selector } : {}),
    ...(deps.fetch ? { fetch: deps.fetch } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    onChange: (change) => log({ level: "info", msg: "feed applied", ...change }),
    onError: (error) =>
      log({ level: "warn", msg: "feed sync failed", error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }),
  });
  const authz = await listen(authzServer(authzHandler(engine, flows, { xffTrustedHops: config.xffTrustedHops })), config.port, config.host);
  let admin: Server;
  try {
    admin = await listen(
      createServer(adminHandler({ engine, state, sync, ...(flows ? { flows } : {}) })),
      config.adminPort,
      config.adminHost,
    );
  } catch (error) {
    await close(authz);
    throw error;
  }
  sync.start();
  flows?.start();
  log({ level: "info", msg: "listening", authz: urlOf(authz), admin: urlOf(admin) });
  return {
    state,
    engine,
    sync,
    flows,
    authzUrl: urlOf(authz),
    adminUrl: urlOf(admin),
    async stop() {
      try {
        await sync.stop();
      } finally {
        trigger?.close();
      }
      await flows?.stop();
      await Promise.all([close(authz), close(admin)]);
    },
  };
}

export type RunningPep = Awaited<ReturnType<typeof startPep>>;

/** The command: runs until SIGINT or SIGTERM. */
export async function main(argv: readonly string[], io: Io, deps: PepDeps = {}): Promise<number> {
  let config: PepConfig | undefined;
  try {
    config = readConfig(argv, io.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.write(`simroot-pep: ${error.message}\n\n${usage}`);
    return 2;
  }
  if (!config) {
    io.stdout.write(usage);
    return 0;
  }
  const log =
    deps.log ?? ((line: Record<string, unknown>) => io.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`));
  let pep: RunningPep;
  try {
    pep = await startPep(config, { ...deps, log });
  } catch (error) {
    io.stderr.write(`simroot-pep: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await pep.stop();
  log({ level: "info", msg: "stopped" });
  return 0;
}
