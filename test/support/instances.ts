/**
 * Control-plane instances as separate processes over one DynamoDB Local and one set of tables
 * (see instance-process.ts): what many Lambda instances are, with nothing shared in memory.
 */
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";

export interface Instance {
  readonly url: string;
  readonly feedHubUrl: string;
  /** The MQTT side of the hub the instance started (none when it shares another's). */
  readonly feedMqttUrl?: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export function startInstance(
  start: { dynamoEndpoint: string; tablePrefix: string; feedHubUrl?: string; feedSigningKeyPath?: string },
  env: Record<string, string> = {},
): Promise<Instance> {
  const child = fork(join(import.meta.dirname, "instance-process.ts"), {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    env: { ...process.env, ...env },
  });
  child.send(start);
  return new Promise((resolve, reject) => {
    child.once("message", (message: { url: string; feedHubUrl: string; feedMqttUrl?: string }) =>
      resolve({
        ...message,
        child,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once("exit", () => done());
            child.send({ stop: true });
          }),
      }),
    );
    child.once("exit", (code) => reject(new Error(`an instance exited before it started (${code})`)));
  });
}
