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
import type { Ledger, TableKey } from "@simroot/core";
import { dynamodbCommandActions, transactWriteItemActions } from "@simroot/core/platform/dynamodb-actions";
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

/** What IAM checks for each item of `TransactWriteItems` and `TransactGetItems`. */
const transactItems: Readonly<Record<string, string>> = { ...transactWriteItemActions, Get: "GetItem" };

/** What a DynamoDB request names a table by: its `TableName`, each transaction item's, its batch's keys. */
type TableRequest = { readonly TableName?: string };
type Input = {
  readonly TableName?: unknown;
  readonly TransactItems?: readonly Readonly<Record<string, TableRequest>>[];
  readonly RequestItems?: Readonly<Record<string, unknown>>;
};

/** The (action, table name) pairs IAM checks for one request. */
function requested(command: string, input: Input): { action: string; table: string }[] {
  if (command === "TransactWriteItemsCommand" || command === "TransactGetItemsCommand") {
    return input.TransactItems!.flatMap((item) =>
      Object.entries(item).map(([kind, body]) => ({ action: transactItems[kind] ?? kind, table: body.TableName as string })),
    );
  }
  if (command === "BatchGetItemCommand" || command === "BatchWriteItemCommand") {
    return Object.keys(input.RequestItems ?? {}).map((table) => ({ action: dynamodbCommandActions[command]!, table }));
  }
  // A command this map does not know (PartiQL, table management) is refused rather than passed.
  return [{ action: dynamodbCommandActions[command] ?? command.replace(/Command$/, ""), table: String(input.TableName ?? "") }];
}

/**
 * What every commit needs besides its own writes: the shard head (read, written) and audit records, and the
 * sequencer's reads (the cut of shard heads, the records and versions, the bindings' store revisions).
 */
const ledgerNeeds = [
  { action: "GetItem", table: "control" },
  { action: "PutItem", table: "control" },
  { action: "BatchGetItem", table: "control" },
  { action: "PutItem", table: "audit" },
  { action: "Query", table: "audit" },
  { action: "GetItem", table: "audit" },
  { action: "BatchGetItem", table: "identity" },
  { action: "GetItem", table: "identity" },
] as const;

/**
 * Adds the check to a DynamoDB client whose tables are `tableNames`, and to the ledger that
 * commits through it. Every refusal is also kept in `violations` (a test asserts it stays
 * empty: a refusal a caller swallows is still a bug).
 *
 * The local ledger batches the commits of every function of the process into one transaction
 * (in AWS each function has its own), and its loops run on after the commit that started them:
 * so a commit's writes are checked when the function makes it, against that function, and the
 * ledger's own requests run outside any function.
 */
export function enforceGrants(
  client: Pick<DynamoDBClient, "middlewareStack">,
  tableNames: Readonly<Record<TableKey, string>>,
  ledger: Pick<Ledger, "commit" | "sequence">,
) {
  const keyOf = new Map(Object.entries(tableNames).map(([key, name]) => [name, key as TableKey]));
  const violations: GrantViolation[] = [];
  const check = (name: FunctionName, action: string, table: string) => {
    const granted = functions[name].tables as Readonly<Partial<Record<TableKey, readonly string[]>>>;
    const key = keyOf.get(table);
    if (key !== undefined && granted[key]?.includes(action)) return;
    violations.push({ function: name, action: `dynamodb:${action}`, table });
    throw Object.assign(
      new Error(
        `User: arn:aws:sts::000000000000:assumed-role/${name}/local is not authorized to perform: dynamodb:${action} on resource: ${table} because no identity-based policy allows the dynamodb:${action} action`,
      ),
      { name: "AccessDeniedException", $fault: "client", $metadata: { httpStatusCode: 400 } },
    );
  };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = current.getStore();
      if (name !== undefined)
        for (const { action, table } of requested(String(context.commandName), args.input as Input)) check(name, action, table);
      return next(args);
    },
    { step: "initialize", name: "simrootGrantCheck" },
  );
  const commit = ledger.commit.bind(ledger);
  const sequence = ledger.sequence.bind(ledger);
  ledger.commit = (change) => {
    const name = current.getStore();
    try {
      if (name !== undefined) {
        for (const item of change.writes) {
          for (const [kind, body] of Object.entries(item)) check(name, transactItems[kind] ?? kind, body.TableName as string);
        }
        for (const { action, table } of ledgerNeeds) check(name, action, tableNames[table]);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return current.exit(() => commit(change));
  };
  ledger.sequence = (tenantId) => current.exit(() => sequence(tenantId));
  return { violations: violations as readonly GrantViolation[] };
}
