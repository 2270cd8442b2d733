/**
 * One `sst.aws.Dynamo` per entry of the table definition in core. Nothing about a table
 * (fields, keys, indexes, ttl) is restated here: it is all read from `tables`.
 */
import type { Resource } from "sst";
import { tableKeys, tables as definitions, type TableDefinition, type TableKey } from "../packages/core/src/platform/tables.ts";
import { stage, type ProvisionedCapacity } from "./stage";

/** `identity` -> `IdentityTable`: the component name, and the `Resource` key in `sst-env.d.ts`. */
export type TableComponentName<K extends TableKey = TableKey> = `${Capitalize<K>}Table`;

/**
 * `sst-env.d.ts` is committed (SST regenerates it on deploy): this fails to typecheck when
 * it lacks a table of the definition, so the committed `Resource` types cannot drift.
 */
export type TablesDeclaredInSstEnv = Expect<Resource[TableComponentName] extends { name: string; type: "sst.aws.Dynamo" } ? true : false>;
export type Expect<T extends true> = T;

export function tableComponentName<K extends TableKey>(key: K): TableComponentName<K> {
  return `${key.charAt(0).toUpperCase()}${key.slice(1)}Table` as TableComponentName<K>;
}

/** The variable core's `tableNames()` reads for a table: `SIMROOT_TABLE_<KEY.toUpperCase()>`. */
export function tableEnvironmentVariable(key: TableKey): string {
  return `SIMROOT_TABLE_${key.toUpperCase()}`;
}

function dynamoArgs(definition: TableDefinition): sst.aws.DynamoArgs {
  const globalIndexes = Object.fromEntries(
    Object.entries(definition.indexes).map(([indexName, index]) => [
      indexName,
      {
        hashKey: index.partitionKey,
        ...(index.sortKey === undefined ? {} : { rangeKey: index.sortKey }),
        ...(index.include === undefined ? {} : { projection: index.include.length === 0 ? ("keys-only" as const) : [...index.include] }),
      },
    ]),
  );
  return {
    fields: { ...definition.fields },
    primaryIndex:
      definition.sortKey === undefined
        ? { hashKey: definition.partitionKey }
        : { hashKey: definition.partitionKey, rangeKey: definition.sortKey },
    ...(Object.keys(globalIndexes).length > 0 ? { globalIndexes } : {}),
    ...(definition.ttl === undefined ? {} : { ttl: definition.ttl }),
    ...(definition.stream === undefined ? {} : { stream: definition.stream }),
    // Production keeps its data: deletion protection and 35 days of point-in-time recovery.
    transform: {
      table: (args, opts) => {
        args.deletionProtectionEnabled = stage.protectTables;
        args.pointInTimeRecovery = { enabled: stage.protectTables };
        const capacity = stage.provisioned;
        if (capacity) {
          // The floor, at creation; then auto scaling owns the capacity, and a deploy must not set it back to the floor
          // under load (the AWS provider's advice with auto scaling): its capacity properties are ignored on update.
          opts.ignoreChanges = [
            ...((opts.ignoreChanges as string[] | undefined) ?? []),
            "readCapacity",
            "writeCapacity",
            "globalSecondaryIndexes[*].readCapacity",
            "globalSecondaryIndexes[*].writeCapacity",
          ];
          args.billingMode = "PROVISIONED";
          args.readCapacity = capacity.read.min;
          args.writeCapacity = capacity.write.min;
          args.globalSecondaryIndexes = $output(args.globalSecondaryIndexes ?? []).apply((indexes) =>
            indexes.map((index) => ({ ...index, readCapacity: capacity.read.min, writeCapacity: capacity.write.min })),
          );
        }
      },
    },
  };
}

/**
 * Target-tracking auto scaling of a provisioned table's reads and writes, and each of its indexes' (production with
 * `SIMROOT_PROVISIONED_CAPACITY=1`: `stage.provisioned`).
 */
function autoScale(key: TableKey, table: sst.aws.Dynamo, capacity: ProvisionedCapacity) {
  const targets = [
    { resource: "table", resourceId: $interpolate`table/${table.name}`, suffix: "" },
    ...Object.keys(definitions[key].indexes).map((index) => ({
      resource: "index",
      resourceId: $interpolate`table/${table.name}/index/${index}`,
      suffix: index.charAt(0).toUpperCase() + index.slice(1),
    })),
  ];
  for (const { resource, resourceId, suffix } of targets) {
    for (const [dimension, units, metric] of [
      ["Read", capacity.read, "DynamoDBReadCapacityUtilization"],
      ["Write", capacity.write, "DynamoDBWriteCapacityUtilization"],
    ] as const) {
      const name = `${tableComponentName(key)}${suffix}${dimension}Scaling`;
      const scalableDimension = `dynamodb:${resource}:${dimension}CapacityUnits`;
      const target = new aws.appautoscaling.Target(`${name}Target`, {
        serviceNamespace: "dynamodb",
        resourceId,
        scalableDimension,
        minCapacity: units.min,
        maxCapacity: units.max,
      });
      new aws.appautoscaling.Policy(`${name}Policy`, {
        policyType: "TargetTrackingScaling",
        serviceNamespace: "dynamodb",
        resourceId: target.resourceId,
        scalableDimension: target.scalableDimension,
        targetTrackingScalingPolicyConfiguration: {
          predefinedMetricSpecification: { predefinedMetricType: metric },
          targetValue: capacity.targetUtilisation,
        },
      });
    }
  }
}

/** The Dynamo components, keyed by the table key of the definition. */
export const dynamoTables = Object.fromEntries(
  tableKeys.map((key) => {
    const table = new sst.aws.Dynamo(tableComponentName(key), dynamoArgs(definitions[key]));
    if (stage.provisioned) autoScale(key, table, stage.provisioned);
    return [key, table];
  }),
) as Record<TableKey, sst.aws.Dynamo>;

/** `SIMROOT_TABLE_<KEY>` = table name, for the given tables (what core's `tableNames()` reads). */
export function tableEnvironment(keys: readonly TableKey[]): Record<string, $util.Output<string>> {
  return Object.fromEntries(keys.map((key) => [tableEnvironmentVariable(key), dynamoTables[key].name]));
}

/** Table names by key, for the app outputs. */
export const tableNameOutputs = Object.fromEntries(tableKeys.map((key) => [key, dynamoTables[key].name])) as Record<
  TableKey,
  $util.Output<string>
>;
