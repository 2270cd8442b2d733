import { busName, dynamoSettings, tableNames } from "./config.ts";
import { eventBridgePublisher } from "./event/eventbridge-publisher.ts";
import type { Ports } from "./ports.ts";
import { documentClient } from "./store/dynamo.ts";

let provided: Ports | undefined;

/**
 * The ports the handlers run with. In Lambda they are built once per container from the
 * environment (DynamoDB, EventBridge); the local runtime provides its own before it loads
 * the very same handler modules (DynamoDB Local, the durable local bus).
 */
export function runtimePorts(): Ports {
  provided ??= {
    db: documentClient(dynamoSettings()),
    tables: tableNames(),
    publisher: eventBridgePublisher(busName()),
    now: () => new Date(),
  };
  return provided;
}

export function providePorts(ports: Ports): void {
  provided = ports;
}
