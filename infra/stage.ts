/**
 * What differs between stages. `production` keeps its data (SST `protect` and `retain`, and
 * DynamoDB deletion protection and point-in-time recovery on every table); any other stage
 * (`dev`, a developer's name, a pull request) is disposable and removed with `sst remove`.
 */
export const isProduction = $app.stage === "production";

export const stage = {
  /** DynamoDB deletion protection and PITR (35 days of restore points). */
  protectTables: isProduction,
  /** Years an archived audit object is locked (S3 Object Lock, compliance mode) in production. */
  archiveLockYears: 7,
  /** How long function and API access logs are kept. */
  logRetention: (isProduction ? "3 months" : "1 week") as "3 months" | "1 week",
  /** API Gateway stage throttling: steady requests per second and burst, for the whole API. */
  throttle: isProduction ? { rateLimit: 2_000, burstLimit: 1_000 } : { rateLimit: 50, burstLimit: 100 },
} as const;
