/**
 * What a DynamoDB client gets when it talks to DynamoDB Local (an endpoint is set): the local runtime, the tests, the
 * scripts run against them. No function in AWS sets an endpoint, so infra/esbuild-plugins.mjs (`dynamoLocalLeftOut`)
 * puts `undefined` in its place in every function's bundle (269 bytes each, measured).
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { dynamoLocalCredentials } from "../config.ts";
import { timeouts } from "../platform/limits.ts";

export const dynamoLocal:
  | {
      readonly credentials: () => { accessKeyId: string; secretAccessKey: string };
      readonly timeouts: { requestTimeoutMs: number; connectionTimeoutMs: number };
      readonly tune: (client: DynamoDBClient) => void;
    }
  | undefined = {
  // Any credentials do; without -sharedDb, DynamoDB Local keeps a database per access key (config).
  credentials: dynamoLocalCredentials,
  // DynamoDB Local is one JVM: a herd of a thousand PEP snapshots queues its loopback connections for more than the
  // cloud's 1 s, so a local endpoint gets the local request timeout for connecting too.
  timeouts: { requestTimeoutMs: timeouts.localSdkRequestMs, connectionTimeoutMs: timeouts.localSdkRequestMs },
  tune: retryLockWaits,
};

/**
 * DynamoDB Local (SQLite underneath) answers a request that waited too long for a lock with an
 * error that "will succeed in actual DynamoDB API"; under load it is common. Against DynamoDB
 * Local only, such requests are sent again (jittered, a few times), as DynamoDB would have served them.
 */
function retryLockWaits(client: DynamoDBClient) {
  client.middlewareStack.add(
    (next) => async (args) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await next(args);
        } catch (error) {
          if (attempt >= 6 || !/waiting for a lock/.test((error as Error)?.message ?? "")) throw error;
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 50 * attempt));
        }
      }
    },
    { step: "finalizeRequest", name: "retryLocalLockWaits" },
  );
}
