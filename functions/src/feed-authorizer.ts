import type { IoTCustomAuthorizerHandler } from "aws-lambda";
import { authorizeFeedSubscriber, documentClient, dynamoSettings, tableNames } from "@simroot/core";

/** Built once per container: the authorizer reads API keys and nothing else (no ledger, bus or channel). */
const store = { db: documentClient(dynamoSettings()), tables: tableNames() };

/** The AWS IoT Core custom authorizer of the feed's push channel: PEPs, by their feed API key (see core's feed/subscriber-authorizer). */
export const handler: IoTCustomAuthorizerHandler = (event) => authorizeFeedSubscriber(store, event);
