/**
 * The whole control plane in one Node process: DynamoDB Local (or any DynamoDB), the tables
 * from the shared definition, the durable local bus wired to the very Lambda handler
 * modules, and the Hono app under @hono/node-server.
 */
import { join } from "node:path";
import { serve, type HttpBindings, type ServerType } from "@hono/node-server";
import { createApp, type AppLog } from "@simroot/api";
import { apiFunctionFor } from "@simroot/core/platform/api-routes";
import {
  archiveAllTenants,
  auditRetentionDays,
  authorizeFeedSubscriber,
  deliverDue,
  directoryArchiveStore,
  documentClient,
  ensureTables,
  busMaxEntryBytes,
  ingestMaxBacklog,
  fileSealer,
  fileSigner,
  memorySealer,
  memorySigner,
  portsFor,
  secretsKeyFile,
  noticeSealer,
  publishCommits,
  recordDeadLetter,
  storeHealth,
  tableNames,
  webhookTargets,
  authFailureLimitFromEnv,
  type AuthFailureLimit,
  type MetricsSink,
  type Ports,
  type Publisher,
  type Redeliver,
  type WebhookTargets,
} from "@simroot/core";
import { LocalBus, type RetrySettings } from "./bus/local-bus.ts";
import { startDynamoLocal, type DynamoLocal } from "./dynamodb-local.ts";
import { startFeedHub } from "./feed-hub.ts";
import { hubFeedNotifier } from "./feed-hub-notifier.ts";
import { startHistoryReader, startOutboxReader } from "./outbox-reader.ts";
import { enforceGrants, runningAs, type GrantViolation } from "./grants.ts";
import { loadRuleTargets } from "./targets.ts";

export interface LocalRuntimeOptions {
  /** Persist DynamoDB Local and the bus journal here; omit to keep everything in memory. */
  readonly dataDir?: string;
  /** Use this DynamoDB instead of starting DynamoDB Local. */
  readonly dynamoEndpoint?: string;
  readonly dynamoPort?: number;
  readonly region?: string;
  readonly tablePrefix?: string;
  /** Serve HTTP on this port (0 for any free one); omit to serve nothing (tests call `app.request`). */
  readonly port?: number;
  readonly hostname?: string;
  readonly retry?: Partial<RetrySettings>;
  readonly logRequests?: boolean;
  /**
   * The feed's push channel (the laptop's IoT Core): the hub of another instance to share, as that instance's
   * `feedHubUrl` gives it (its secret in it, which following its topics takes), or omit to start one.
   */
  readonly feedHubUrl?: string;
  /** How often the hub's MQTT side asks the authorizer again about a connected PEP (IoT's 300 s by default; tests). */
  readonly feedMqttRefreshSeconds?: number;
  /** The hub's MQTT port (`SIMROOT_FEED_MQTT_PORT`): PEPs on the push channel keep their URL across restarts. */
  readonly feedMqttPort?: number;
  /**
   * The history reader sequences records their committer left behind (core ledger/catch-up.ts): default on. Off for
   * tests that stage an instance stopping mid-sequencing and check what the next run makes of it.
   */
  readonly feedBackstop?: boolean;
  /** The largest entry the local bus takes (default `SIMROOT_BUS_MAX_ENTRY_BYTES`, else 256 KB: bus/local-bus.ts `localBusMaxEntryBytes`). */
  readonly busMaxEntryBytes?: number;
  /** Ingestion answers 503 past this many events waiting on the bus (each fact of a packed entry counted) (default `SIMROOT_INGEST_MAX_BACKLOG`, 10,000). */
  readonly maxBacklog?: number;
  /**
   * Where outbound webhooks may go: "any" address (default: a laptop's receivers are usually on localhost), or "public"
   * ones only, as in AWS (core webhook/target.ts). SIMROOT_WEBHOOK_TARGETS sets it too.
   */
  readonly webhookTargets?: WebhookTargets;
  /** The feed's signing key file (created if missing): instances of one deployment sign with one key. Default: under `dataDir`, else in memory. */
  readonly feedSigningKeyPath?: string;
  /**
   * The key file that seals kept secrets (webhook signing keys; created if missing): instances of
   * one deployment share it. Default: `SIMROOT_SECRETS_KEY_FILE`, else under `dataDir`, else in memory.
   */
  readonly secretsKeyPath?: string;
  /** Handler invocations in flight at once (the bus's default otherwise). */
  readonly concurrency?: number;
  /** How often the webhook worker looks for due deliveries (retries, replays, expired leases); 0 turns it off. */
  readonly webhookWorkerMs?: number;
  /** Where the audit archive is written (default `<dataDir>/audit-archive`; none without a data folder). */
  readonly auditArchiveDir?: string;
  /** How often the audit archiver runs (default 6 h); 0 turns it off. */
  readonly auditArchiveMs?: number;
  /** Where the figures of core's platform/metrics.ts go (in Lambda, Powertools Metrics); none by default. */
  readonly metrics?: MetricsSink;
  /** Where the API's log lines go (default: JSON lines on stdout and stderr). */
  readonly log?: AppLog;
  /**
   * Refuse a DynamoDB request its function's grants do not allow, as IAM does in AWS (`grants.ts`;
   * default on, `SIMROOT_ENFORCE_GRANTS=0` turns it off).
   */
  readonly enforceGrants?: boolean;
  /**
   * Failed authentications per client address before 429 (core access/auth-failures.ts; default 20 a minute,
   * `SIMROOT_AUTH_FAILURES_PER_MINUTE`, 0 turns it off; loopback clients not counted). Only what is served on `port`;
   * the feed hub's MQTT authorizer holds each key id to the same number (core feed/subscriber-authorizer.ts).
   */
  readonly authLimits?: AuthFailureLimit;
}

export async function startLocalRuntime(options: LocalRuntimeOptions = {}) {
  let dynamo: DynamoLocal | undefined;
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step();
  };
  try {
    if (!options.dynamoEndpoint) {
      dynamo = await startDynamoLocal({
        dbPath: options.dataDir ? join(options.dataDir, "dynamodb") : undefined,
        port: options.dynamoPort,
        restart: true,
      });
      stops.push(() => dynamo!.stop());
    }
    const endpoint = options.dynamoEndpoint ?? dynamo!.endpoint;
    const db = documentClient({ endpoint, region: options.region ?? "us-east-1" });
    stops.push(async () => db.destroy());
    const tables = tableNames(options.tablePrefix);
    await ensureTables(db, tables);

    let feedHubUrl = options.feedHubUrl;
    let feedMqttUrl: string | undefined;
    /** The ports the hub's MQTT authorizer reads API keys with, once they exist (a CONNECT before fails as IoT's would). */
    let authorizerPorts: Ports | undefined;
    /** The feed authorizer's failed-authentication limit, per key id (IoT Core names it no client address, nor does the hub). */
    const feedAuthFailures = options.authLimits ?? authFailureLimitFromEnv();
    if (!feedHubUrl) {
      // Loopback only. Its MQTT side asks the feed's custom authorizer about each PEP, as IoT Core does.
      const hub = await startFeedHub({
        authorize: (request) =>
          authorizerPorts
            ? runningAs("feedAuthorizer", () => authorizeFeedSubscriber(authorizerPorts!, request, feedAuthFailures))
            : Promise.reject(new Error("the control plane is starting")),
        ...(options.feedMqttRefreshSeconds === undefined ? {} : { mqttRefreshSeconds: options.feedMqttRefreshSeconds }),
        ...(options.feedMqttPort === undefined ? {} : { mqttPort: options.feedMqttPort }),
      });
      stops.push(() => hub.close());
      // The URL instances publish to and follow the hub by (its secret in it): what another instance is handed.
      feedHubUrl = hub.subscriberUrl;
      feedMqttUrl = hub.mqttUrl;
    }
    const feedNotifier = hubFeedNotifier(feedHubUrl);
    stops.push(async () => feedNotifier.destroy());

    // The ports exist before the bus opens: deliveries it recovers from its journal run against them, never against defaults.
    let opened: LocalBus | undefined;
    const publisher: Publisher = {
      publish: (events, publishOptions) =>
        opened ? opened.publish(events, publishOptions) : Promise.reject(new Error("the local bus is not open yet")),
    };
    const backlog = { pending: async () => opened?.status().pendingEvents ?? 0, bound: options.maxBacklog ?? ingestMaxBacklog() };
    const secretsKeyPath =
      options.secretsKeyPath ?? secretsKeyFile() ?? (options.dataDir ? join(options.dataDir, "secrets-key") : undefined);
    const secrets = secretsKeyPath ? await fileSealer(secretsKeyPath) : memorySealer();
    const redeliver: Redeliver = (rule, envelope) =>
      opened ? opened.redeliver(rule, envelope) : Promise.reject(new Error("the local bus is not open yet"));
    const metrics = options.metrics;
    const ports = {
      ...portsFor(db, tables, publisher, undefined, metrics ? { metrics } : {}),
      feedNotifier,
      backlog,
      secrets,
      redeliver,
      ...(metrics ? { metrics } : {}),
      webhookTargets: options.webhookTargets ?? webhookTargets() ?? "any",
    } satisfies Ports;
    const grantViolations: readonly GrantViolation[] =
      (options.enforceGrants ?? process.env.SIMROOT_ENFORCE_GRANTS !== "0") ? enforceGrants(db, tables, ports.ledger).violations : [];
    // The feed's signing key: a file under the data folder, or one in memory for a run that keeps nothing. It signs
    // the feed and the change each push notice carries.
    const keyPath = options.feedSigningKeyPath ?? (options.dataDir ? join(options.dataDir, "feed-signing-key.pem") : undefined);
    const signer = keyPath ? await fileSigner(keyPath) : memorySigner();
    publishCommits(
      ports,
      noticeSealer(ports, async () => signer),
    );
    authorizerPorts = ports;
    const maxEntryBytes = options.busMaxEntryBytes ?? busMaxEntryBytes();
    const bus = await LocalBus.open({
      directory: options.dataDir ? join(options.dataDir, "bus") : undefined,
      targets: await loadRuleTargets(ports),
      retry: options.retry,
      ...(options.concurrency ? { concurrency: options.concurrency } : {}),
      // An entry past it takes the path EventBridge's refusal takes in AWS: a dead letter of the outbox's.
      ...(maxEntryBytes === undefined ? {} : { maxEntryBytes }),
      // The tenant's list at /v1/bus/dead-letters, as the drain function keeps it in AWS.
      onDeadLetter: (letter) => runningAs("deadLetterDrain", () => recordDeadLetter(ports, letter)),
    });
    opened = bus;
    stops.push(() => bus.close());
    // The outbox: what the ledger committed reaches the bus from the audit table's stream (as in AWS), never by hand.
    const region = options.region ?? "us-east-1";
    const outbox = await startOutboxReader({
      db,
      tables,
      endpoint,
      region,
      publisher: bus,
      wrap: (body) => runningAs("outbox", body),
    });
    stops.push(() => outbox.stop());
    // The history: each record listed under its subject, its IP leases, from the same stream by its own position.
    // It is the feed's backstop too (core ledger/catch-up.ts), announcing what it moves on the push channel.
    const history = await startHistoryReader({
      db,
      tables,
      endpoint,
      region,
      backstop: options.feedBackstop === false ? false : { feedNotifier },
      wrap: (body) => runningAs("history", body),
    });
    stops.push(() => history.stop());
    // A commit of this process is read from the stream at once; commits of other instances within the idle poll.
    const unsubscribe = ports.ledger.onCommit(() => {
      outbox.nudge();
      history.nudge();
    });
    stops.push(async () => unsubscribe());
    // What a scheduled Lambda does in AWS (functions/src/webhook-worker.ts): attempt the deliveries that are due.
    if (options.webhookWorkerMs !== 0) {
      // One run at a time, as the schedule's Lambda runs them: a run may take its whole budget (receivers that never
      // answer), and runs started beside it multiplied its attempts at once (review 68).
      let running = false;
      const worker = setInterval(() => {
        if (running) return;
        running = true;
        void runningAs("webhookWorker", () => deliverDue(ports))
          .catch((error: unknown) => console.error("webhook worker:", error))
          .finally(() => {
            running = false;
          });
      }, options.webhookWorkerMs ?? 1000);
      worker.unref();
      stops.push(async () => clearInterval(worker));
    }

    // What the daily archiver does in AWS (functions/src/audit-archiver.ts), into a folder under the data folder.
    const archiveDir = options.auditArchiveDir ?? (options.dataDir ? join(options.dataDir, "audit-archive") : undefined);
    if (archiveDir && options.auditArchiveMs !== 0) {
      const store = directoryArchiveStore(archiveDir);
      const run = () =>
        void runningAs("auditArchiver", () => archiveAllTenants(ports, signer, store, { retentionDays: auditRetentionDays() })).catch(
          (error: unknown) =>
            console.error(
              JSON.stringify({ level: "ERROR", message: "audit archive failed", error: String((error as Error)?.message ?? error) }),
            ),
        );
      const archiver = setInterval(run, options.auditArchiveMs ?? 6 * 60 * 60 * 1000);
      archiver.unref();
      stops.push(async () => clearInterval(archiver));
    }
    const app = createApp({
      ports: () => ports,
      feedSigner: async () => signer,
      logRequests: options.logRequests,
      ...(options.log ? { log: options.log } : {}),
      streamFeed: true,
      authFailures: options.authLimits ?? authFailureLimitFromEnv(),
      // The socket's address (`@hono/node-server` hands the Node request as `env.incoming`).
      clientAddress: (c) => (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming?.socket?.remoteAddress,
      health: {
        store: () => storeHealth(ports),
        bus: async () => ({ status: "ok", detail: { kind: "local", durable: Boolean(options.dataDir), ...bus.status() } }),
      },
    });
    // Each request runs as the API function its path reaches in AWS, with that function's grants.
    const dispatch = app.fetch;
    app.fetch = (request, ...rest) =>
      runningAs(apiFunctionFor(request.method, new URL(request.url).pathname), () => dispatch(request, ...rest));
    let url: string | undefined;
    if (options.port !== undefined) {
      const server = await listen(app.fetch, options.port, options.hostname ?? "127.0.0.1");
      stops.push(
        () =>
          new Promise((resolve) => {
            server.close(() => resolve());
            // close() waits for every connection, and a PEP's feed stream or long poll holds one open for up to a
            // minute (review 57: the process never exited while a PEP was connected). Idle keep-alive connections end
            // now; a request in progress gets a second to answer, then its connection is cut (the PEP retries).
            if ("closeIdleConnections" in server) server.closeIdleConnections();
            setTimeout(() => "closeAllConnections" in server && server.closeAllConnections(), 1_000).unref();
          }),
      );
      const address = server.address();
      url = `http://${options.hostname ?? "127.0.0.1"}:${typeof address === "object" && address ? address.port : options.port}`;
    }
    /**
     * Resolves once everything committed so far is published (the outbox) and every consumer is
     * done with it, including what their own commits caused in turn.
     */
    const settled = async () => {
      await Promise.all([outbox.caughtUp(), history.caughtUp()]);
      for (;;) {
        await bus.drained();
        const before = outbox.published();
        await Promise.all([outbox.caughtUp(), history.caughtUp()]);
        if (outbox.published() === before) return;
      }
    };
    return { app, bus, outbox, history, settled, ports, endpoint, url, feedHubUrl, feedMqttUrl, grantViolations, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export type LocalRuntime = Awaited<ReturnType<typeof startLocalRuntime>>;

function listen(
  fetch: (request: Request, env: HttpBindings) => Response | Promise<Response>,
  port: number,
  hostname: string,
): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: (request, env) => fetch(request, env as HttpBindings), port, hostname }, () => resolve(server));
    server.once("error", reject);
  });
}
