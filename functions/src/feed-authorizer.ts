import type { IoTCustomAuthorizerHandler } from "aws-lambda";
import { authFailureLimitFromEnv, authorizeFeedSubscriber, documentClient, dynamoSettings, tableNames } from "@simroot/core";

/** Built once per container: the authorizer reads API keys and counts failed authentications (no ledger, bus or channel). */
const store = { db: documentClient(dynamoSettings()), tables: tableNames(), now: () => new Date() };
/** `SIMROOT_AUTH_FAILURES_PER_MINUTE`, as the API's: here per key id (IoT Core names no client address). */
const authFailures = authFailureLimitFromEnv();

/** The AWS IoT Core custom authorizer of the feed's push channel: PEPs, by their feed API key (see core's feed/subscriber-authorizer). */
export const handler: IoTCustomAuthorizerHandler = (event) => authorizeFeedSubscriber(store, event, authFailures);
