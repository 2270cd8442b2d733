import { applierQueueUrl, busName, dynamoSettings, feedKmsKeyId, tableNames, webhookTargets } from "./config.ts";
import { sqsBacklog } from "./ingest/backlog.ts";
import { eventBridgePublisher } from "./event/eventbridge-publisher.ts";
import { createLedger, type LedgerOptions } from "./ledger/ledger.ts";
import type { MetricsSink } from "./platform/metrics.ts";
import type { Ports } from "./ports.ts";
import { documentClient } from "./store/dynamo.ts";

import { environmentFeedNotifier } from "./feed/iot-notifier.ts";
import { publishCommits } from "./feed/watch.ts";
import { noticeSealer } from "./feed/feed.ts";
import { kmsSigner } from "./feed/kms-signer.ts";
import { lazy } from "./store/sdk-settings.ts";

/**
 * Ports over a store and a bus: the ledger is built on the same store. Entry points build
 * their ports and pass them down (there is no module-level service locator): a Lambda entry
 * from its environment (`environmentPorts`), the local runtime from DynamoDB Local and its bus.
 */
export function portsFor(
  db: Ports["db"],
  tables: Ports["tables"],
  publisher: Ports["publisher"],
  now = () => new Date(),
  ledger: LedgerOptions = {},
): Ports {
  return { db, tables, publisher, ledger: createLedger(db, tables, ledger), now };
}

/** The ports a Lambda container runs with, from its environment (DynamoDB, EventBridge), recording metrics to `metrics`. */
export function environmentPorts(metrics?: MetricsSink): Ports {
  const ports = portsFor(
    documentClient(dynamoSettings()),
    tableNames(),
    eventBridgePublisher(busName()),
    undefined,
    metrics ? { metrics } : {},
  );
  // The feed's push channel: AWS IoT Core's data endpoint (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`).
  const feedNotifier = environmentFeedNotifier();
  const queueUrl = applierQueueUrl();
  const built: Ports = {
    ...ports,
    // Outbound webhooks reach public addresses only, unless the deployment says any (receivers inside its VPC).
    webhookTargets: webhookTargets() ?? "public",
    ...(metrics ? { metrics } : {}),
    ...(feedNotifier ? { feedNotifier } : {}),
    ...(queueUrl ? { backlog: sqsBacklog(queueUrl) } : {}),
  };
  // Notices carry their change signed with the feed key (KMS), so PEPs on the channel need not poll for it.
  const keyId = feedKmsKeyId();
  publishCommits(
    built,
    keyId
      ? noticeSealer(
          built,
          lazy(() => kmsSigner(keyId)),
        )
      : undefined,
  );
  return built;
}

/**
 * The ports of a function that commits nothing (the IoT authorizer): the store from the environment, and a ledger and a
 * publisher that refuse. Its bundle then carries no commit path (no ledger, bus, channel or signer), so its role is
 * granted reads and the one write it makes itself, the connections it let in (core platform/functions.ts
 * `iotAuthorizer`; infra/functions.test.ts derives its actions).
 */
export function readOnlyPorts(): Ports {
  const refuse = (): never => {
    throw new Error("this function only reads: it has no ledger and no bus");
  };
  return {
    db: documentClient(dynamoSettings()),
    tables: tableNames(),
    now: () => new Date(),
    publisher: { publish: async () => refuse() },
    ledger: { commit: async () => refuse(), onCommit: () => () => {}, sequence: async () => refuse() },
  };
}
