import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  UpdateTableCommand,
  DescribeTimeToLiveCommand,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import type { TableNames } from "../config.ts";
import { tables, tableKeys, type TableDefinition } from "../platform/tables.ts";

const attributeTypes = { string: "S", number: "N", binary: "B" } as const;

const keySchema = (partitionKey: string, sortKey?: string) => [
  { AttributeName: partitionKey, KeyType: "HASH" as const },
  ...(sortKey ? [{ AttributeName: sortKey, KeyType: "RANGE" as const }] : []),
];

/** The CreateTable input for one table definition (on-demand; a GSI projects what its definition includes, else all). */
export function createTableInput(name: string, definition: TableDefinition): CreateTableCommandInput {
  const indexes = Object.entries(definition.indexes);
  return {
    TableName: name,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: Object.entries(definition.fields).map(([field, type]) => ({
      AttributeName: field,
      AttributeType: attributeTypes[type],
    })),
    KeySchema: keySchema(definition.partitionKey, definition.sortKey),
    ...(definition.stream ? { StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_IMAGE" as const } } : {}),
    ...(indexes.length > 0
      ? {
          GlobalSecondaryIndexes: indexes.map(([indexName, index]) => ({
            IndexName: indexName,
            KeySchema: keySchema(index.partitionKey, index.sortKey),
            Projection:
              index.include === undefined
                ? { ProjectionType: "ALL" as const }
                : index.include.length === 0
                  ? { ProjectionType: "KEYS_ONLY" as const }
                  : { ProjectionType: "INCLUDE" as const, NonKeyAttributes: [...index.include] },
          })),
        }
      : {}),
  };
}

/** Creates every table that does not exist yet (the local runtime and tests; SST does this in AWS). */
export async function ensureTables(client: DynamoDBClient, names: TableNames): Promise<void> {
  await Promise.all(
    tableKeys.map(async (key) => {
      const definition: TableDefinition = tables[key];
      try {
        await client.send(new CreateTableCommand(createTableInput(names[key], definition)));
      } catch (error) {
        if (!(error instanceof ResourceInUseException)) throw error;
        const { Table } = await client.send(new DescribeTableCommand({ TableName: names[key] }));
        // A table made before it had a stream (a local data folder of an earlier version) gets it now.
        if (definition.stream && !Table?.StreamSpecification?.StreamEnabled) {
          await client.send(
            new UpdateTableCommand({ TableName: names[key], StreamSpecification: { StreamEnabled: true, StreamViewType: "NEW_IMAGE" } }),
          );
        }
        // So does one made before it had a TTL (the identity table's, for release tombstones, since 2026-12-05).
        if (!definition.ttl) return;
        const { TimeToLiveDescription } = await client.send(new DescribeTimeToLiveCommand({ TableName: names[key] }));
        if (TimeToLiveDescription?.TimeToLiveStatus === "ENABLED" || TimeToLiveDescription?.TimeToLiveStatus === "ENABLING") return;
      }
      if (definition.ttl) {
        await client
          .send(
            new UpdateTimeToLiveCommand({
              TableName: names[key],
              TimeToLiveSpecification: { AttributeName: definition.ttl, Enabled: true },
            }),
          )
          // Another process setting the same tables up switched it on first: done.
          .catch((error: unknown) => {
            if (!(error instanceof Error && error.name === "ValidationException" && /already enabled/i.test(error.message))) throw error;
          });
      }
    }),
  );
}
