/**
 * What differs between stages. `production` keeps its data (SST `protect` and `retain`, and
 * DynamoDB deletion protection and point-in-time recovery on every table); any other stage
 * (`dev`, a developer's name, a pull request) is disposable and removed with `sst remove`.
 */
import { applierQueue } from "../packages/core/src/platform/limits.ts";

export const isProduction = $app.stage === "production";

/** Units a second per table or index: the floor auto scaling keeps, its ceiling, and the utilisation it tracks (%). */
export interface ProvisionedCapacity {
  readonly read: { readonly min: number; readonly max: number };
  readonly write: { readonly min: number; readonly max: number };
  readonly targetUtilisation: number;
}

function provisionedCapacity(): ProvisionedCapacity {
  const units = (name: string, fallback: number) => Number(process.env[name]) || fallback;
  return {
    read: { min: units("SIMROOT_MIN_READ_UNITS", 50), max: units("SIMROOT_MAX_READ_UNITS", 40_000) },
    write: { min: units("SIMROOT_MIN_WRITE_UNITS", 50), max: units("SIMROOT_MAX_WRITE_UNITS", 40_000) },
    targetUtilisation: 70,
  };
}

/**
 * `SIMROOT_CONSUMER_CONCURRENCY` in the deploying shell: each event consumer's reserved concurrency, or none when unset.
 * A whole integer from 1 to 1,000, or the synthesis stops: a typo must not deploy unbounded consumers.
 */
function consumerConcurrency(): number | undefined {
  const given = process.env.SIMROOT_CONSUMER_CONCURRENCY;
  if (given === undefined || given === "") return undefined;
  const value = Number(given);
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    throw new Error(`SIMROOT_CONSUMER_CONCURRENCY must be a whole number from 1 to 1000, not "${given}"`);
  }
  return value;
}

export const stage = {
  /** DynamoDB deletion protection and PITR (35 days of restore points). */
  protectTables: isProduction,
  /** Years an archived audit object is locked (S3 Object Lock, compliance mode) in production. */
  archiveLockYears: 7,
  /** How long function and API access logs are kept. */
  logRetention: (isProduction ? "3 months" : "1 week") as "3 months" | "1 week",
  /**
   * Provisioned capacity instead of on demand, for every table and index, with target-tracking auto scaling: only in
   * production, and only when the deploying shell sets `SIMROOT_PROVISIONED_CAPACITY=1` (`npm run cost` prices it at
   * 70% utilisation: about 0.4 of on demand's price for a steady load). A storm above the capacity (a fleet
   * re-attaching after an outage) is throttled until scaling catches up, within minutes, besides the table's burst
   * capacity: the applier retries, ingestion answers 503 with Retry-After; on demand stays the default.
   */
  provisioned: isProduction && process.env.SIMROOT_PROVISIONED_CAPACITY === "1" ? provisionedCapacity() : undefined,
  /**
   * Instances applying the applier's queue at most (its event source mapping's maximum concurrency, 2 to 1,000):
   * `SIMROOT_APPLIER_CONCURRENCY` in the deploying shell, else core's `applierQueue.maximumConcurrency` (100).
   */
  applierConcurrency: Math.min(1000, Math.max(2, Number(process.env.SIMROOT_APPLIER_CONCURRENCY) || applierQueue.maximumConcurrency)),
  /**
   * Reserved concurrency of each consumer EventBridge invokes (every rule's but the applier's, whose queue mapping
   * bounds it: `applierConcurrency`), when set. Without it, a storm of events (a fleet re-attaching) scales each
   * consumer with the event rate, and together they can take the account's concurrency from the API and the feed
   * authorizer (PEPs then fail closed). With it, each consumer runs at most this many instances: EventBridge invokes
   * Lambda asynchronously, so an invocation over the bound is not lost but waits in Lambda's queue, retried for up to
   * `retryPolicy.maximumEventAgeSeconds` and then sent to the rule's dead-letter queue like any failure. Reserving
   * takes from the account's unreserved pool, which AWS keeps at 100 at least: a new account with a low quota refuses
   * the deploy, so it is not the default (README "Configuration").
   */
  consumerConcurrency: consumerConcurrency(),
  /** API Gateway stage throttling: steady requests per second and burst, for the whole API. */
  throttle: isProduction ? { rateLimit: 2_000, burstLimit: 1_000 } : { rateLimit: 50, burstLimit: 100 },
} as const;
