import type { TestProject } from "vitest/node";
import { startDynamoLocal } from "@simroot/local/dynamodb-local";

declare module "vitest" {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

/**
 * Starts one in-memory DynamoDB Local for the run (unless DYNAMODB_ENDPOINT points elsewhere), with a database per
 * access key: each test file sends its own (dynamo-key.ts), so no file's writes wait on every earlier file's stream records.
 */
export default async function setup(project: TestProject) {
  const external = process.env.DYNAMODB_ENDPOINT;
  if (external) {
    project.provide("dynamoEndpoint", external);
    return;
  }
  const dynamo = await startDynamoLocal({ sharedDb: false });
  project.provide("dynamoEndpoint", dynamo.endpoint);
  return () => dynamo.stop();
}
