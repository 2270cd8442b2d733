/**
 * Outbound webhooks in AWS: the `webhooks` rule (infra/bus.ts, from core's rules) queues a
 * durable delivery per matching subscription and makes the first attempt; this scheduled
 * function attempts, every minute, whatever is due: retries on their backoff (up to about 82
 * hours), replays, and deliveries whose attempt was cut off (a timed-out or killed Lambda
 * leaves a lease that expires). The deliveries are items of the automation table. Its
 * permissions, environment and bundling come from the platform definition (`webhookWorker`),
 * like every function's.
 */
import { functionArgs } from "./functions";

export const webhookWorker = new sst.aws.Cron("WebhookWorker", {
  schedule: "rate(1 minute)",
  function: functionArgs("webhookWorker"),
});
