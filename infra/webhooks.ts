/**
 * Outbound webhooks in AWS: the `webhooks` rule (infra/bus.ts, from core's rules) queues a
 * durable delivery per matching subscription and makes the first attempt; this scheduled
 * function attempts, every minute, whatever is due: retries on their backoff (up to about 82
 * hours), replays, and deliveries whose attempt was cut off (a timed-out or killed Lambda
 * leaves a lease that expires). The deliveries are items of the automation table.
 */
import { runtime } from "./bus";
import { tableEnvironment, tablePermissions } from "./database";
import { secretsKey, secretsKeyEnvironment } from "./secrets-key";

export const webhookWorker = new sst.aws.Cron("WebhookWorker", {
  schedule: "rate(1 minute)",
  function: {
    handler: "functions/src/webhook-worker.handler",
    runtime,
    timeout: "60 seconds",
    permissions: [
      ...tablePermissions(["automation", "control", "audit"], ["GetItem", "Query", "PutItem", "UpdateItem"]),
      // A 410 disables the subscription through the ledger, whose sequencer reads the cut of shard heads (control) and
      // the store revisions of the bindings it carries (identity; core platform/functions.ts `ledgerTables`).
      ...tablePermissions(["control", "identity"], ["BatchGetItem"]),
      ...tablePermissions(["identity"], ["GetItem"]),
      // Opens each subscription's sealed signing secret (the sealer's module also names Encrypt).
      { actions: ["kms:Encrypt", "kms:Decrypt"], resources: [secretsKey.arn] },
    ],
    environment: { ...tableEnvironment(["automation", "control", "audit", "identity"]), ...secretsKeyEnvironment },
  },
});
