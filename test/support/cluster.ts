/**
 * The multi-instance harness: the control plane as separate processes (no shared memory, as
 * Lambda runs it) over one DynamoDB Local, each driven over IPC. Each instance can be started
 * with injected faults: GSI read lag, lagging eventually consistent reads, failing bus publishes (see cluster-node.ts).
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { documentClient, ensureTables, fileSigner, tableNames, type DomainEvent } from "@simroot/core";

export interface InstanceOptions {
  /** A GSI Query does not see items written in the last this many ms. */
  readonly gsiLagMs?: number;
  /** An eventually consistent read of the control table answers items as they were up to this many ms ago. */
  readonly eventualLagMs?: number;
  /** Every bus publish of the instance throws. */
  readonly failPublish?: boolean;
  /** Ledger shards per tenant (benchmarks compare one head item with the default). */
  readonly shards?: number;
}

export interface Instance {
  call<Value = unknown>(op: string, args?: unknown): Promise<Value>;
  readonly published: DomainEvent[];
  stop(): Promise<void>;
}

export interface ClusterOptions {
  readonly endpoint: string;
  readonly tablePrefix?: string;
}

/** What an instance sends the harness over IPC (see cluster-node.ts). */
type InstanceMessage =
  | { readonly kind: "ready" }
  | { readonly kind: "published"; readonly events: DomainEvent[] }
  | { readonly kind: "reply"; readonly id: number; readonly value?: unknown; readonly error?: string };

const nodeScript = fileURLToPath(new URL("./cluster-node.ts", import.meta.url));

export async function startCluster(options: ClusterOptions) {
  const tablePrefix = options.tablePrefix ?? `c${Math.random().toString(16).slice(2, 10)}-`;
  const db = documentClient({ endpoint: options.endpoint, region: "us-east-1" });
  await ensureTables(db, tableNames(tablePrefix));
  const directory = await mkdtemp(join(tmpdir(), "simroot-cluster-"));
  const signingKey = join(directory, "feed-signing-key.pem");
  await fileSigner(signingKey);
  const instances: Instance[] = [];

  async function start(instanceOptions: InstanceOptions = {}): Promise<Instance> {
    const child: ChildProcess = fork(nodeScript, [], {
      execPath: process.execPath,
      env: {
        ...process.env,
        DYNAMODB_ENDPOINT: options.endpoint,
        TABLE_PREFIX: tablePrefix,
        SIGNING_KEY: signingKey,
        GSI_LAG_MS: String(instanceOptions.gsiLagMs ?? 0),
        EVENTUAL_LAG_MS: String(instanceOptions.eventualLagMs ?? 0),
        PUBLISH_FAIL: instanceOptions.failPublish ? "1" : "0",
        ...(instanceOptions.shards ? { LEDGER_SHARDS: String(instanceOptions.shards) } : {}),
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const replies = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
    const published: DomainEvent[] = [];
    let next = 0;
    const ready = new Promise<void>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`instance exited with ${code}`)));
      child.on("message", (message: InstanceMessage) => {
        if (message.kind === "ready") resolve();
        else if (message.kind === "published") published.push(...message.events);
        else if (message.kind === "reply") {
          const waiting = replies.get(message.id);
          replies.delete(message.id);
          if (message.error) waiting?.reject(new Error(message.error));
          else waiting?.resolve(message.value);
        }
      });
    });
    await ready;
    const instance: Instance = {
      published,
      call<Value>(op: string, args?: unknown) {
        const id = next++;
        // The op's answer, as the instance returned it.
        return new Promise<unknown>((resolve, reject) => {
          replies.set(id, { resolve, reject });
          child.send({ id, op, args });
        }) as Promise<Value>;
      },
      async stop() {
        if (child.exitCode !== null) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.disconnect();
        await exited;
      },
    };
    instances.push(instance);
    return instance;
  }

  return {
    tablePrefix,
    tables: tableNames(tablePrefix),
    db,
    start,
    /** Starts `count` instances with the same options, in parallel. */
    startMany: (count: number, instanceOptions?: InstanceOptions) =>
      Promise.all(Array.from({ length: count }, () => start(instanceOptions))),
    async stop() {
      await Promise.all(instances.map((instance) => instance.stop()));
      db.destroy();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

export type Cluster = Awaited<ReturnType<typeof startCluster>>;
