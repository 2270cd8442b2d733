import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { DynamoSettings } from "../config.ts";
import { dynamoLocal } from "./dynamo-local.ts";
import { sdkClientSettings } from "./sdk-settings.ts";

/**
 * The document client every store function uses. Every request has a connection and a request timeout (core's
 * `timeouts`): a DynamoDB that accepts and never answers fails the request in seconds (answered 503), it does not hang
 * it. With an endpoint (DynamoDB Local) it gets `dynamoLocal`'s credentials, timeouts and lock-wait retries; a
 * function's bundle has none of them (`dynamoLocal` is undefined there).
 */
export function documentClient(settings: DynamoSettings): DynamoDBDocumentClient {
  const local = settings.endpoint === undefined ? undefined : dynamoLocal;
  const client = new DynamoDBClient({
    region: settings.region,
    endpoint: settings.endpoint,
    ...sdkClientSettings(settings.sdk ?? local?.timeouts),
    ...(local ? { credentials: local.credentials() } : {}),
  });
  local?.tune(client);
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
}
