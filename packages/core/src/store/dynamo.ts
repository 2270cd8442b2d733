import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { DynamoSettings } from "../config.ts";

/**
 * The document client every store function uses. Against DynamoDB Local any credentials
 * do, so fixed ones are supplied when none are configured.
 */
export function documentClient(settings: DynamoSettings): DynamoDBDocumentClient {
  const local = settings.endpoint !== undefined;
  const client = new DynamoDBClient({
    region: settings.region,
    endpoint: settings.endpoint,
    ...(local ? { credentials: { accessKeyId: "local", secretAccessKey: "local" }, maxAttempts: 5 } : {}),
  });
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
}
