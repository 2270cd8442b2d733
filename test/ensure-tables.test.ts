/**
 * `ensureTables` is what the local runtime, the multi-instance harness and each instance process call at start: several
 * may set up the same tables at once. Each table ends created with its TTL on, and no caller fails for another's
 * doing the same (found by review 53: the loser of a CreateTable that then switched the TTL on raced the winner, and
 * DynamoDB answered it "TimeToLive is already enabled").
 */
import { expect, inject, it } from "vitest";
import { DescribeTimeToLiveCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { dynamoLocalCredentials, ensureTables, tableNames } from "@simroot/core";
import { tables } from "@simroot/core/platform/tables";

const client = () => new DynamoDBClient({ endpoint: inject("dynamoEndpoint"), region: "us-east-1", credentials: dynamoLocalCredentials() });

it("creates the tables with their TTL when three processes set them up at once", async () => {
  const failures: string[] = [];
  for (let attempt = 0; attempt < 12; attempt++) {
    const names = tableNames(`ensure${attempt}${Date.now().toString(36)}-`);
    const clients = [client(), client(), client()];
    const settled = await Promise.allSettled(clients.map((each) => ensureTables(each, names)));
    for (const outcome of settled) if (outcome.status === "rejected") failures.push(String(outcome.reason));
    for (const [key, definition] of Object.entries(tables) as [keyof typeof names, { ttl?: string }][]) {
      if (!definition.ttl) continue;
      const { TimeToLiveDescription } = await clients[0]!.send(new DescribeTimeToLiveCommand({ TableName: names[key] }));
      expect([key, TimeToLiveDescription?.TimeToLiveStatus]).toEqual([key, "ENABLED"]);
    }
    for (const each of clients) each.destroy();
  }
  expect(failures).toEqual([]);
}, 120_000);
