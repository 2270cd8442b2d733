/**
 * The IAM action (without its `dynamodb:` prefix) each DynamoDB command needs, by the names the
 * document client and the low-level client give it. Read by the bundle's permission check
 * (`scripts/bundle/sdk-actions.ts`, from the commands a function's code imports) and by the local
 * runtime's grant check (`packages/local/src/grants.ts`, from the requests it sends).
 */
export const dynamodbCommandActions: Readonly<Record<string, string>> = {
  GetCommand: "GetItem",
  GetItemCommand: "GetItem",
  BatchGetCommand: "BatchGetItem",
  BatchGetItemCommand: "BatchGetItem",
  QueryCommand: "Query",
  ScanCommand: "Scan",
  PutCommand: "PutItem",
  PutItemCommand: "PutItem",
  UpdateCommand: "UpdateItem",
  UpdateItemCommand: "UpdateItem",
  DeleteCommand: "DeleteItem",
  DeleteItemCommand: "DeleteItem",
  BatchWriteCommand: "BatchWriteItem",
  BatchWriteItemCommand: "BatchWriteItem",
  TransactGetCommand: "GetItem",
  TransactGetItemsCommand: "GetItem",
  CreateTableCommand: "CreateTable",
  DescribeTableCommand: "DescribeTable",
  UpdateTimeToLiveCommand: "UpdateTimeToLive",
  DeleteTableCommand: "DeleteTable",
};

/** `TransactWriteItems` has no IAM action of its own: IAM checks each item's, by its kind. */
export const transactWriteItemActions: Readonly<Record<string, string>> = {
  Put: "PutItem",
  Update: "UpdateItem",
  Delete: "DeleteItem",
  ConditionCheck: "ConditionCheckItem",
};
