import type { TestProject } from "vitest/node";
import { startDynamoLocal } from "@simroot/local/dynamodb-local";

declare module "vitest" {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

/** Starts one in-memory DynamoDB Local for the run (unless DYNAMODB_ENDPOINT points elsewhere). */
export default async function setup(project: TestProject) {
  const external = process.env.DYNAMODB_ENDPOINT;
  if (external) {
    project.provide("dynamoEndpoint", external);
    return;
  }
  const dynamo = await startDynamoLocal();
  project.provide("dynamoEndpoint", dynamo.endpoint);
  return () => dynamo.stop();
}
