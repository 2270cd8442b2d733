import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { dynamoLocalCredentials, type DynamoSettings } from "../config.ts";
import { timeouts } from "../platform/limits.ts";
import { sdkClientSettings } from "./sdk-settings.ts";

/**
 * The document client every store function uses. Against DynamoDB Local any credentials
 * do, so config's `dynamoLocalCredentials` are supplied. Every request has a connection and
 * a request timeout (core's `timeouts`): a DynamoDB that accepts and never answers fails the
 * request in seconds (answered 503), it does not hang it.
 */
export function documentClient(settings: DynamoSettings): DynamoDBDocumentClient {
  const local = settings.endpoint !== undefined;
  const client = new DynamoDBClient({
    region: settings.region,
    endpoint: settings.endpoint,
    // DynamoDB Local is one JVM: a herd of a thousand PEP snapshots queues its loopback connections for more than the
    // cloud's 1 s, so a local endpoint gets the local request timeout for connecting too.
    ...sdkClientSettings(
      settings.sdk ?? (local ? { requestTimeoutMs: timeouts.localSdkRequestMs, connectionTimeoutMs: timeouts.localSdkRequestMs } : {}),
    ),
    ...(local ? { credentials: dynamoLocalCredentials() } : {}),
  });
  if (local) retryLockWaits(client);
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
}

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
