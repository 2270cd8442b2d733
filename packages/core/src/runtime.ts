import { SQSClient } from "@aws-sdk/client-sqs";
import { applierQueueUrl, busName, dynamoSettings, iotDataEndpoint, tableNames } from "./config.ts";
import { sqsBacklog } from "./ingest/backlog.ts";
import { eventBridgePublisher } from "./event/eventbridge-publisher.ts";
import type { Ports } from "./ports.ts";
import { documentClient } from "./store/dynamo.ts";

import { createLedger } from "./ledger/ledger.ts";
import { iotDataClient, iotFeedNotifier } from "./feed/iot-notifier.ts";
import { publishCommits } from "./feed/watch.ts";

let provided: Ports | undefined;

/**
 * The ports the handlers run with. In Lambda they are built once per container from the
 * environment (DynamoDB, EventBridge); the local runtime provides its own before it loads
 * the very same handler modules (DynamoDB Local, the durable local bus).
 */
export function runtimePorts(): Ports {
  if (!provided) {
    const ports = portsFor(documentClient(dynamoSettings()), tableNames(), eventBridgePublisher(busName()));
    // The feed's push channel: AWS IoT Core's data endpoint (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`).
    const iotEndpoint = iotDataEndpoint();
    const queueUrl = applierQueueUrl();
    provided = {
      ...ports,
      ...(iotEndpoint ? { feedNotifier: iotFeedNotifier(iotDataClient(iotEndpoint)) } : {}),
      ...(queueUrl ? { backlog: sqsBacklog(new SQSClient({}), queueUrl) } : {}),
    };
    publishCommits(provided);
  }
  return provided;
}

export function providePorts(ports: Ports): void {
  provided = ports;
}

/** Ports over a store and a bus: the ledger is built on the same store. */
export function portsFor(db: Ports["db"], tables: Ports["tables"], publisher: Ports["publisher"], now = () => new Date()): Ports {
  return { db, tables, publisher, ledger: createLedger(db, tables), now };
}
