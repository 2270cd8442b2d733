/**
 * IAM on the laptop: each DynamoDB request the local runtime sends on behalf of a function (an
 * API request, by the function its path reaches in AWS; a rule's consumer; the archiver; the
 * dead-letter drain) is checked against that function's grants in the platform definition, per
 * action and per table, and refused as AWS refuses it (`AccessDeniedException`). The bundle test
 * (`infra/functions.test.ts`) checks which actions a function's code can send; only running it
 * shows on which table, which is what an IAM statement names.
 *
 * Requests sent outside any function (the runtime's own set-up, the outbox reader's position,
 * a test writing its fixtures) are not checked.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { TableKey } from "@simroot/core";
import { functions, type FunctionName } from "@simroot/core/platform/functions";

const current = new AsyncLocalStorage<FunctionName>();

/** Runs `body` as `name`: the DynamoDB requests it sends (and what it starts) are checked against its grants. */
export function runningAs<T>(name: FunctionName, body: () => T): T {
  return current.run(name, body);
}

/** A request a function's grants do not allow: what AWS would have refused. */
export interface GrantViolation {
  readonly function: FunctionName;
  readonly action: string;
  readonly table: string;
}

const byCommand: Readonly<Record<string, string>> = {
  GetItemCommand: "GetItem",
  BatchGetItemCommand: "BatchGetItem",
  QueryCommand: "Query",
  ScanCommand: "Scan",
  PutItemCommand: "PutItem",
  UpdateItemCommand: "UpdateItem",
  DeleteItemCommand: "DeleteItem",
  BatchWriteItemCommand: "BatchWriteItem",
};

const transactItems: Readonly<Record<string, string>> = {
  Put: "PutItem",
  Update: "UpdateItem",
  Delete: "DeleteItem",
  ConditionCheck: "ConditionCheckItem",
  Get: "GetItem",
};

type Input = Record<string, any>;

/** The (action, table name) pairs IAM checks for one request. */
function requested(command: string, input: Input): { action: string; table: string }[] {
  if (command === "TransactWriteItemsCommand" || command === "TransactGetItemsCommand") {
    return (input.TransactItems as Input[]).flatMap((item) =>
      Object.entries(item).map(([kind, body]) => ({ action: transactItems[kind] ?? kind, table: (body as Input).TableName as string })),
    );
  }
  if (command === "BatchGetItemCommand" || command === "BatchWriteItemCommand") {
    return Object.keys(input.RequestItems ?? {}).map((table) => ({ action: byCommand[command]!, table }));
  }
  const action = byCommand[command];
  return action && typeof input.TableName === "string" ? [{ action, table: input.TableName }] : [];
}

/**
 * Adds the check to a DynamoDB client whose tables are `tableNames`. Every refusal is also kept
 * in `violations` (a test asserts it stays empty: a refusal a caller swallows is still a bug).
 */
export function enforceGrants(client: Pick<DynamoDBClient, "middlewareStack">, tableNames: Readonly<Record<TableKey, string>>) {
  const keyOf = new Map(Object.entries(tableNames).map(([key, name]) => [name, key as TableKey]));
  const violations: GrantViolation[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = current.getStore();
      if (name !== undefined) {
        const granted = functions[name].tables as Readonly<Partial<Record<TableKey, readonly string[]>>>;
        for (const { action, table } of requested(String(context.commandName), args.input as Input)) {
          const key = keyOf.get(table);
          if (key !== undefined && granted[key]?.includes(action)) continue;
          violations.push({ function: name, action: `dynamodb:${action}`, table });
          throw Object.assign(
            new Error(
              `User: arn:aws:sts::000000000000:assumed-role/${name}/local is not authorized to perform: dynamodb:${action} on resource: ${table} because no identity-based policy allows the dynamodb:${action} action`,
            ),
            { name: "AccessDeniedException", $fault: "client", $metadata: { httpStatusCode: 400 } },
          );
        }
      }
      return next(args);
    },
    { step: "initialize", name: "simrootGrantCheck" },
  );
  return { violations: violations as readonly GrantViolation[] };
}
