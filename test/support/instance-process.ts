/**
 * One control-plane instance in a process of its own (as a Lambda instance runs: no memory
 * shared with the others), over a DynamoDB and tables given by its parent. It starts the feed
 * hub unless told the URL of another instance's, serves HTTP on a free port, and tells its
 * parent `{ url, feedHubUrl }` over IPC; it stops when told `stop` or when the parent goes.
 *   fork("test/support/instance-process.ts", { env: { ..., SIMROOT_FEED_HEAD_POLL_MS } })
 *   child.send({ dynamoEndpoint, tablePrefix, feedHubUrl? })
 */
import { startLocalRuntime } from "@simroot/local/runtime";

interface Start {
  readonly dynamoEndpoint: string;
  readonly tablePrefix: string;
  readonly feedHubUrl?: string;
  /** The deployment's feed signing key (one key for all instances, as KMS is in AWS). */
  readonly feedSigningKeyPath?: string;
}

process.once("message", async (start: Start) => {
  const runtime = await startLocalRuntime({
    dynamoEndpoint: start.dynamoEndpoint,
    tablePrefix: start.tablePrefix,
    port: 0,
    logRequests: false,
    retry: { baseDelayMs: 5, maxDelayMs: 50, maxAttempts: 4 },
    ...(start.feedHubUrl ? { feedHubUrl: start.feedHubUrl } : {}),
    ...(start.feedSigningKeyPath ? { feedSigningKeyPath: start.feedSigningKeyPath } : {}),
  });
  const stop = async () => {
    await runtime.stop();
    process.exit(0);
  };
  process.on("message", (message: { stop?: boolean }) => message.stop && void stop());
  process.once("disconnect", () => void stop());
  process.send!({ url: runtime.url, feedHubUrl: runtime.feedHubUrl, feedMqttUrl: runtime.feedMqttUrl });
});
