import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { TableNames } from "./config.ts";
import type { Publisher } from "./event/event.ts";

/** Everything a verb may touch outside itself. Adapters provide them; tests pass real ones. */
export interface Ports {
  readonly db: DynamoDBDocumentClient;
  readonly tables: TableNames;
  readonly publisher: Publisher;
  readonly now: () => Date;
}
